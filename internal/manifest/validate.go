package manifest

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"
)

const (
	// APIVersion is the only manifest apiVersion accepted.
	APIVersion = "cluster.gravitational.io/v2"
	// KindCluster is a cluster image: Kubernetes plus the application.
	KindCluster = "Cluster"
	// KindApplication is an application image installed into a running cluster.
	KindApplication = "Application"
	// DefaultRepository is the repository used when metadata.repository is empty.
	DefaultRepository = "gravitational.io"
)

var (
	// nameRE is what may appear in a package name or repository: it ends up in
	// locators ("repo/name:ver") and file names, so no ':', '/' or spaces.
	nameRE        = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	portRangeRE   = regexp.MustCompile(`^(\d{1,5})(?:-(\d{1,5}))?$`)
	permissionsRE = regexp.MustCompile(`^[rwm]{1,3}$`)
	octalRE       = regexp.MustCompile(`^0?[0-7]{3,4}$`)
)

// validator runs the checks that need more than one field or a parsed value.
type validator struct {
	*decoder
	root *yaml.Node
}

func (v *validator) errAt(path, format string, args ...any) {
	v.errorf(v.nodeAt(path), path, format, args...)
}

// nodeAt returns the value node of path, or of its nearest written ancestor,
// so that "required field is missing" points at the enclosing mapping.
func (v *validator) nodeAt(p string) *yaml.Node {
	for p != "" {
		if fp, ok := v.pos[p]; ok && fp.value != nil {
			return fp.value
		}
		p = parentPath(p)
	}
	return v.root
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// required reports a missing field, unless it already has an error (a wrong
// type leaves it empty too).
func (v *validator) required(p, value string) bool {
	if value == "" && v.failed[p] {
		return false
	}
	if value == "" {
		v.errAt(p, "required field is missing")
		return false
	}
	return true
}

func (v *validator) validate(m *Manifest) {
	v.validateHeader(m)
	v.validateMetadata(&m.Metadata)
	if m.BaseImageRef != "" {
		if m.Kind == KindApplication {
			v.errAt("baseImage", "baseImage applies only to kind %s", KindCluster)
		} else if _, _, err := splitBaseImage(m.BaseImageRef); err != nil {
			v.errAt("baseImage", "%v", err)
		}
	}
	v.validateEndpoints(m.Endpoints)
	if m.Dependencies != nil {
		v.validateLocators("dependencies.packages", m.Dependencies.Packages)
		v.validateLocators("dependencies.apps", m.Dependencies.Apps)
	}
	v.validateProfiles(m.NodeProfiles)
	v.validateInstaller(m)
	v.validateSystemOptions("systemOptions", m.SystemOptions)
}

func (v *validator) validateHeader(m *Manifest) {
	if v.required("apiVersion", m.APIVersion) && m.APIVersion != APIVersion {
		v.errAt("apiVersion", "unsupported apiVersion %q (want %q)", m.APIVersion, APIVersion)
	}
	if !v.required("kind", m.Kind) || m.Kind == KindCluster || m.Kind == KindApplication {
		return
	}
	v.errAt("kind", "unsupported kind %q (want %q or %q)%s", m.Kind, KindCluster, KindApplication,
		suggest(m.Kind, []string{KindCluster, KindApplication}))
}

func (v *validator) validateMetadata(md *Metadata) {
	if v.required("metadata.name", md.Name) && !nameRE.MatchString(md.Name) {
		v.errAt("metadata.name", "invalid name %q: use letters, digits, '.', '_' and '-'", md.Name)
	}
	if v.required("metadata.resourceVersion", md.ResourceVersion) {
		if err := checkSemver(md.ResourceVersion); err != nil {
			v.errAt("metadata.resourceVersion", "%v", err)
		}
	}
	if md.Repository != "" && !nameRE.MatchString(md.Repository) {
		v.errAt("metadata.repository", "invalid repository %q: use letters, digits, '.', '_' and '-'", md.Repository)
	}
}

func checkSemver(s string) error {
	// The library's own message ("invalid semantic version") adds nothing to ours.
	if _, err := semver.StrictNewVersion(s); err != nil {
		return fmt.Errorf("%q is not a valid semantic version (want MAJOR.MINOR.PATCH, e.g. 1.2.3 or 1.2.3-rc.1)", s)
	}
	return nil
}

// splitBaseImage splits "gravity:0.1.0" into its name and semver.
func splitBaseImage(ref string) (name, version string, err error) {
	name, version, ok := strings.Cut(ref, ":")
	if !ok || !nameRE.MatchString(name) {
		return "", "", fmt.Errorf("invalid base image %q: want name:version, e.g. gravity:0.1.0", ref)
	}
	if err := checkSemver(version); err != nil {
		return "", "", fmt.Errorf("invalid base image %q: %w", ref, err)
	}
	return name, version, nil
}

// checkLocator accepts "repository/name:version", as in Gravity dependencies.
func checkLocator(s string) error {
	repo, rest, ok := strings.Cut(s, "/")
	name, version, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || !nameRE.MatchString(repo) || !nameRE.MatchString(name) {
		return fmt.Errorf("invalid locator %q: want repository/name:version, e.g. gravitational.io/dns-app:0.1.0", s)
	}
	if err := checkSemver(version); err != nil {
		return fmt.Errorf("invalid locator %q: %w", s, err)
	}
	return nil
}

func (v *validator) validateLocators(p string, locs []string) {
	for i, l := range locs {
		if err := checkLocator(l); err != nil {
			v.errAt(fmt.Sprintf("%s[%d]", p, i), "%v", err)
		}
	}
}

func (v *validator) validateEndpoints(eps []Endpoint) {
	for i, ep := range eps {
		p := fmt.Sprintf("endpoints[%d]", i)
		v.required(p+".name", ep.Name)
		if ep.Port < 0 || ep.Port > 65535 {
			v.errAt(p+".port", "port %d out of range 1-65535", ep.Port)
		}
	}
}

func (v *validator) validateInstaller(m *Manifest) {
	if m.Installer == nil {
		return
	}
	endpoints := map[string]bool{}
	for _, ep := range m.Endpoints {
		endpoints[ep.Name] = true
	}
	for i, name := range m.Installer.SetupEndpoints {
		if !endpoints[name] {
			v.errAt(fmt.Sprintf("installer.setupEndpoints[%d]", i), "no endpoint named %q in endpoints", name)
		}
	}
	if m.Installer.Flavors != nil {
		v.validateFlavors(m.Installer.Flavors, m.NodeProfiles)
	}
}

func (v *validator) validateFlavors(f *Flavors, profiles []NodeProfile) {
	known := map[string]bool{}
	var names []string
	for _, p := range profiles {
		known[p.Name] = true
		names = append(names, p.Name)
	}
	flavors := map[string]bool{}
	var flavorNames []string
	for i, item := range f.Items {
		p := fmt.Sprintf("installer.flavors.items[%d]", i)
		if v.required(p+".name", item.Name) && flavors[item.Name] {
			v.errAt(p+".name", "duplicate flavor name %q", item.Name)
		}
		flavors[item.Name] = true
		flavorNames = append(flavorNames, item.Name)
		if len(item.Nodes) == 0 {
			v.errAt(p+".nodes", "a flavor needs at least one node")
		}
		for j, n := range item.Nodes {
			np := fmt.Sprintf("%s.nodes[%d]", p, j)
			if v.required(np+".profile", n.Profile) && !known[n.Profile] {
				v.errAt(np+".profile", "unknown node profile %q%s", n.Profile, suggest(n.Profile, names))
			}
			if n.Count < 1 {
				v.errAt(np+".count", "count must be at least 1")
			}
		}
	}
	if f.Default != "" && !flavors[f.Default] {
		v.errAt("installer.flavors.default", "no flavor named %q%s", f.Default, suggest(f.Default, flavorNames))
	}
}

func (v *validator) validateProfiles(profiles []NodeProfile) {
	seen := map[string]int{}
	for i, np := range profiles {
		p := fmt.Sprintf("nodeProfiles[%d]", i)
		if v.required(p+".name", np.Name) {
			if first, dup := seen[np.Name]; dup {
				v.errAt(p+".name", "duplicate node profile %q (also nodeProfiles[%d])", np.Name, first)
			} else {
				seen[np.Name] = i
			}
		}
		if np.ServiceRole != "" && np.ServiceRole != "master" && np.ServiceRole != "node" {
			v.errAt(p+".serviceRole", "invalid serviceRole %q (want master or node)", np.ServiceRole)
		}
		v.validateTaints(p, np.Taints)
		v.validateRequirements(p+".requirements", np.Requirements)
		v.validateSystemOptions(p+".systemOptions", np.SystemOptions)
	}
}

func (v *validator) validateTaints(p string, taints []Taint) {
	for i, t := range taints {
		tp := fmt.Sprintf("%s.taints[%d]", p, i)
		v.required(tp+".key", t.Key)
		switch t.Effect {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
		case "":
			v.errAt(tp+".effect", "required field is missing")
		default:
			v.errAt(tp+".effect", "invalid taint effect %q (want NoSchedule, PreferNoSchedule or NoExecute)", t.Effect)
		}
	}
}

func (v *validator) validateSystemOptions(p string, so *SystemOptions) {
	if so == nil || so.Dependencies == nil || so.Dependencies.RuntimePackage == "" {
		return
	}
	if err := checkLocator(so.Dependencies.RuntimePackage); err != nil {
		v.errAt(p+".dependencies.runtimePackage", "%v", err)
	}
}

func (v *validator) validateRequirements(p string, r *Requirements) {
	if r == nil {
		return
	}
	if r.CPU != nil {
		v.validateRange(p+".cpu", int64(r.CPU.Min), int64(r.CPU.Max))
	}
	if r.RAM != nil {
		lo, _ := r.RAM.Min.Bytes() // already checked while decoding
		hi, _ := r.RAM.Max.Bytes()
		v.validateRange(p+".ram", lo, hi)
	}
	for i, os := range r.OS {
		v.required(fmt.Sprintf("%s.os[%d].name", p, i), os.Name)
	}
	if r.Network != nil {
		v.validatePorts(p+".network.ports", r.Network.Ports)
	}
	v.validateVolumes(p+".volumes", r.Volumes)
	v.validateDevices(p+".devices", r.Devices)
	for i, c := range r.CustomChecks {
		v.required(fmt.Sprintf("%s.customChecks[%d].script", p, i), c.Script)
	}
}

func (v *validator) validateRange(p string, lo, hi int64) {
	if lo < 0 {
		v.errAt(p+".min", "must not be negative")
	}
	if hi < 0 {
		v.errAt(p+".max", "must not be negative")
	}
	if hi > 0 && lo > hi {
		v.errAt(p+".max", "max is less than min")
	}
}

func (v *validator) validatePorts(p string, ports []Port) {
	for i, port := range ports {
		pp := fmt.Sprintf("%s[%d]", p, i)
		if port.Protocol != "" && port.Protocol != "tcp" && port.Protocol != "udp" {
			v.errAt(pp+".protocol", "invalid protocol %q (want tcp or udp)", port.Protocol)
		}
		if len(port.Ranges) == 0 {
			v.errAt(pp+".ranges", "required field is missing")
		}
		for j, r := range port.Ranges {
			if err := checkPortRange(r); err != nil {
				v.errAt(fmt.Sprintf("%s.ranges[%d]", pp, j), "%v", err)
			}
		}
	}
}

func checkPortRange(r string) error {
	m := portRangeRE.FindStringSubmatch(r)
	if m == nil {
		return fmt.Errorf("invalid port range %q (want e.g. 8080 or 8000-8010)", r)
	}
	lo, _ := strconv.Atoi(m[1])
	hi := lo
	if m[2] != "" {
		hi, _ = strconv.Atoi(m[2])
	}
	if lo < 1 || hi > 65535 || lo > hi {
		return fmt.Errorf("invalid port range %q: ports are 1-65535, low to high", r)
	}
	return nil
}

func (v *validator) validateVolumes(p string, vols []Volume) {
	for i, vol := range vols {
		vp := fmt.Sprintf("%s[%d]", p, i)
		if v.required(vp+".path", vol.Path) && !path.IsAbs(vol.Path) {
			v.errAt(vp+".path", "path %q must be absolute", vol.Path)
		}
		if vol.TargetPath != "" && !path.IsAbs(vol.TargetPath) {
			v.errAt(vp+".targetPath", "path %q must be absolute", vol.TargetPath)
		}
		if vol.Mode != "" && !octalRE.MatchString(vol.Mode) {
			v.errAt(vp+".mode", "invalid mode %q (want octal, e.g. \"0755\")", vol.Mode)
		}
		v.validateID(vp+".uid", vol.UID)
		v.validateID(vp+".gid", vol.GID)
	}
}

func (v *validator) validateDevices(p string, devs []Device) {
	for i, dev := range devs {
		dp := fmt.Sprintf("%s[%d]", p, i)
		if v.required(dp+".path", dev.Path) && !path.IsAbs(dev.Path) {
			v.errAt(dp+".path", "path %q must be absolute", dev.Path)
		}
		if dev.Permissions != "" && !permissionsRE.MatchString(dev.Permissions) {
			v.errAt(dp+".permissions", "invalid permissions %q (want a combination of r, w and m, e.g. \"rwm\")", dev.Permissions)
		}
		if dev.FileMode != "" && !octalRE.MatchString(dev.FileMode) {
			v.errAt(dp+".fileMode", "invalid file mode %q (want octal, e.g. \"0666\")", dev.FileMode)
		}
		v.validateID(dp+".uid", dev.UID)
		v.validateID(dp+".gid", dev.GID)
	}
}

func (v *validator) validateID(p string, id *int) {
	if id != nil && *id < 0 {
		v.errAt(p, "must not be negative")
	}
}
