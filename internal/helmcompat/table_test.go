package helmcompat

import (
	"strings"
	"testing"
)

func TestWriteHelm2List(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{name: "seed", in: `[{"name":"example","namespace":"kube-system","revision":"2","updated":"2019-10-29 17:59:19.123456789 +0000 UTC","status":"deployed","chart":"alpine-0.0.2","app_version":""}]`,
			want: "NAME   \tREVISION\tUPDATED                 \tSTATUS  \tCHART       \tAPP VERSION\tNAMESPACE\n" +
				"example\t2       \tTue Oct 29 17:59:19 2019\tDEPLOYED\talpine-0.0.2\t           \tkube-system\n"},
		{name: "statuses", in: `[{"name":"a","namespace":"n","revision":"10","updated":"garbage","status":"pending-upgrade","chart":"c-1","app_version":"1.0"},` +
			`{"name":"bb","namespace":"n","revision":"1","updated":"2019-10-29 17:59:19 +0000 UTC","status":"uninstalled","chart":"c-1","app_version":"1.0"}]`,
			want: "NAME\tREVISION\tUPDATED                 \tSTATUS         \tCHART\tAPP VERSION\tNAMESPACE\n" +
				"a   \t10      \tgarbage                 \tPENDING_UPGRADE\tc-1  \t1.0        \tn\n" +
				"bb  \t1       \tTue Oct 29 17:59:19 2019\tDELETED        \tc-1  \t1.0        \tn\n"},
		{name: "none", in: `[]`, want: ""},
		{name: "not json", in: `Error: x`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			err := WriteHelm2List(&b, []byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tt.want)
			}
		})
	}
}

func TestListTable(t *testing.T) {
	for args, want := range map[string]bool{"ls": true, "list --all": true, "ls -q": false, "ls --short": false, "ls -o yaml": false, "ls --output=json": false, "ls -oyaml": false} {
		p, err := Translate(strings.Fields(args), fakeLookup(nil))
		if err != nil || p.Helm2List != want {
			t.Errorf("%s: Helm2List %v (%v), want %v", args, p.Helm2List, err, want)
		}
	}
}
