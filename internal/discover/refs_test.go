package discover

import "testing"

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestLocalName(t *testing.T) {
	cases := []struct {
		ref, registry, want, short string
	}{
		{"alpine:3.3", DefaultRegistry, "registry.local:5000/alpine:3.3", "alpine:3.3"},
		{"quay.io/gravitational/debian-tall:stretch", DefaultRegistry, "registry.local:5000/gravitational/debian-tall:stretch", "gravitational/debian-tall:stretch"},
		{"docker.io/library/nginx:1", DefaultRegistry, "registry.local:5000/library/nginx:1", "library/nginx:1"},
		{"localhost:5000/x/y", DefaultRegistry, "registry.local:5000/x/y:latest", "x/y"},
		{"localhost/x/y:2", DefaultRegistry, "registry.local:5000/x/y:2", "x/y:2"},
		{"nginx", DefaultRegistry, "registry.local:5000/nginx:latest", "nginx"},
		{"a@" + digest, DefaultRegistry, "registry.local:5000/a@" + digest, "a@" + digest},
		{"a:1@" + digest, DefaultRegistry, "registry.local:5000/a:1@" + digest, "a:1@" + digest},
		{"gcr.io:443/p/a/b/c:v1", DefaultRegistry, "registry.local:5000/p/a/b/c:v1", "p/a/b/c:v1"},
		{"registry.local:5000/alpine:3.3", DefaultRegistry, "registry.local:5000/alpine:3.3", "alpine:3.3"},
		{"registry.local:5000/nginx", DefaultRegistry, "registry.local:5000/nginx", "nginx"},
		{"registry.local/nginx:1", DefaultRegistry, "registry.local:5000/nginx:1", "nginx:1"},
		{"user/repo:tag", "leader.telekube.local:5000/", "leader.telekube.local:5000/user/repo:tag", "user/repo:tag"},
		{"127.0.0.1:5000/a:1", "127.0.0.1:5001", "127.0.0.1:5001/a:1", "a:1"},
	}
	for _, c := range cases {
		got, err := LocalName(c.ref, c.registry)
		if err != nil || got != c.want {
			t.Errorf("LocalName(%q, %q) = %q, %v; want %q", c.ref, c.registry, got, err, c.want)
		}
		if got := ShortName(c.ref); got != c.short {
			t.Errorf("ShortName(%q) = %q, want %q", c.ref, got, c.short)
		}
	}
}

func TestLocalNameErrors(t *testing.T) {
	cases := []struct{ ref, registry string }{
		{"", DefaultRegistry},
		{"Alpine:3.3", DefaultRegistry},
		{"alpine:3.3 ", DefaultRegistry},
		{"alpine::3", DefaultRegistry},
		{"a@sha256:abc", DefaultRegistry},
		{"alpine:3.3", ""},
		{"alpine:3.3", "registry.local:5000/sub"},
		{"alpine:3.3", "bad host"},
		{"0", "0"},
		{"alpine", "myregistry"},
	}
	for _, c := range cases {
		if got, err := LocalName(c.ref, c.registry); err == nil {
			t.Errorf("LocalName(%q, %q) = %q, want error", c.ref, c.registry, got)
		}
	}
}
