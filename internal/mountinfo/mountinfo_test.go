package mountinfo

import (
	"reflect"
	"strings"
	"testing"
)

const mountSample = `21 26 0:20 / /proc rw,relatime - proc proc rw
26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:5 master:1 - cgroup2 cgroup2 rw
50 26 0:4 net:[4026532290] /run/netns/gt-h1 rw shared:7 - nsfs nsfs rw
51 26 0:40 / /mnt/with\040space rw - tmpfs my\134src rw
`

func TestParse(t *testing.T) {
	got, err := Parse(mountSample)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{"/proc", "proc", "proc", false}, {"/", "ext4", "/dev/vda", false},
		{"/sys/fs/cgroup/unified", "cgroup2", "cgroup2", true}, {"/run/netns/gt-h1", "nsfs", "nsfs", true},
		{"/mnt/with space", "tmpfs", `my\src`, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{
		"21 26 0:20 / /proc rw - proc",             // no source
		"21 26 0:20 / /proc rw proc proc rw",       // no separator
		`21 26 0:20 / /pr\04 rw - proc proc rw`,    // truncated escape
		`21 26 0:20 / /pr\999oc rw - proc proc rw`, // not octal
		`21 26 0:20 / /proc rw - proc pr\0 rw`,     // truncated in source
		"- - - - - -",                              // too short
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(mountSample)
	f.Add(`1 2 3 4 /a\040b 6 - t s o`)
	f.Add("1 2 3 4 5 6 7 - t")
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := Parse(in)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.FSType == "" || strings.ContainsAny(e.FSType, " \n") {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}
