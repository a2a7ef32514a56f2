package preflight

import (
	"testing"
)

// The parsers read files the host controls; none may panic on any input.

func FuzzParseMeminfo(f *testing.F) {
	f.Add("MemTotal:        8000000 kB\nMemFree: 1 kB\n")
	f.Add("MemTotal: 18446744073709551615 kB\n")
	f.Add("MemTotal:\n")
	f.Add("MemTotal: 5 MB\n")
	f.Fuzz(func(t *testing.T, data string) {
		n, err := parseMemTotal(data)
		if err != nil && n != 0 {
			t.Errorf("error %v with value %d", err, n)
		}
		_ = countCPUs(data)
	})
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("ID=ubuntu\nVERSION_ID=\"22.04\"\n")
	f.Add("# comment\nID='rhel'\nVERSION_ID=\"8.9\\\"\"\n=x\nnoequals\n")
	f.Add("ID=\"\nVERSION_ID='\n")
	f.Fuzz(func(t *testing.T, data string) {
		rel := parseOSRelease(data)
		_ = matchOS([]OSRequirement{{Name: rel["ID"], Versions: []string{rel["VERSION_ID"]}}}, rel["ID"], rel["VERSION_ID"])
		_, _ = parseVersionMajor(rel["VERSION_ID"])
	})
}

func FuzzParseModules(f *testing.F) {
	f.Add("overlay 151552 0 - Live 0x0\nbr_netfilter 32768 0 - Live 0x0\n")
	f.Add("kernel/fs/overlayfs/overlay.ko\n/\n.ko\n")
	f.Add("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\n")
	f.Add("   0: 00000000:192B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1\n")
	f.Add("CONFIG_VETH=y\n# CONFIG_X is not set\n")
	f.Fuzz(func(t *testing.T, data string) {
		for m := range parseModules(data) {
			if m == "" {
				t.Error("empty module name")
			}
		}
		_ = parseBuiltin(data)
		_ = parseProcCgroups(data)
		_ = parseListeners(data, 6443)
		_ = parseKernelConfig(data)
	})
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"8080", "1-65535", "10-5", "-", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, b, err := ParsePortRange(s)
		if err == nil && (a < 1 || b > 65535 || a > b) {
			t.Errorf("%q parsed to %d-%d", s, a, b)
		}
	})
}

func FuzzParseRoutes(f *testing.F) {
	f.Add(routesDefault)
	f.Add(routesIsolated)
	f.Add("Iface\neth0\t0000000A\t0\t0\t0\t0\t0\t00FF00FF\n")
	f.Fuzz(func(t *testing.T, data string) {
		routes, err := parseRoutes(data)
		if err != nil && routes != nil {
			t.Errorf("error %v with routes %v", err, routes)
		}
		for _, r := range routes {
			if !r.IsValid() || r != r.Masked() {
				t.Errorf("route %v", r)
			}
		}
	})
}
