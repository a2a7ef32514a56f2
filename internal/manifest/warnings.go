package manifest

import (
	"regexp"
	"strings"
)

// ImplementedFields are the manifest fields that change what we build or run.
// Every other field is accepted (it is valid Gravity) but draws a Warning, so
// that nothing is ignored silently. Paths use dots and no list indexes
// ("nodeProfiles.name" covers every profile's name). When a feature lands,
// add its fields here.
var ImplementedFields = []string{
	"apiVersion",
	"kind",
	"metadata.name",
	"metadata.resourceVersion",
	"metadata.description",
	"metadata.namespace",
	"metadata.repository",
	"baseImage",
	"hooks.install.job",
	"hooks.uninstall.job",
	"hooks.preUpdate.job",
	"hooks.update.job",
	"hooks.postUpdate.job",
	"hooks.rollback.job",
	"hooks.postRollback.job",
	"hooks.preNodeAdd.job",
	"hooks.postNodeAdd.job",
	"hooks.preNodeRemove.job",
	"hooks.postNodeRemove.job",
}

const notImplementedMsg = "has no effect yet: accepted for compatibility, ignored by this version"

var indexRE = regexp.MustCompile(`\[\d+\]`)

// warnings returns one Warning per written field that is not implemented,
// naming the outermost such field only ("nodeProfiles", not each of its children).
func warnings(file string, keys []string, pos map[string]fieldPos) []Warning {
	implemented, covered := implementedSets()
	var out []Warning
	for _, path := range keys {
		if !shouldWarn(indexRE.ReplaceAllString(path, ""), implemented, covered) {
			continue
		}
		w := Warning{File: file, Field: path, Msg: notImplementedMsg}
		if k := pos[path].key; k != nil {
			w.Line, w.Column = k.Line, k.Column
		}
		out = append(out, w)
	}
	return out
}

// implementedSets returns the implemented paths, and those plus their ancestors.
func implementedSets() (implemented, covered map[string]bool) {
	implemented, covered = map[string]bool{}, map[string]bool{}
	for _, f := range ImplementedFields {
		implemented[f] = true
		parts := strings.Split(f, ".")
		for i := 1; i <= len(parts); i++ {
			covered[strings.Join(parts[:i], ".")] = true
		}
	}
	return implemented, covered
}

// shouldWarn reports whether path is the outermost unimplemented field on its branch.
func shouldWarn(path string, implemented, covered map[string]bool) bool {
	parts := strings.Split(path, ".")
	for i := 1; i <= len(parts); i++ {
		prefix := strings.Join(parts[:i], ".")
		if implemented[prefix] {
			return false
		}
		if !covered[prefix] {
			return i == len(parts)
		}
	}
	return false
}
