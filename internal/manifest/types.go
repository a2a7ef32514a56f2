package manifest

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// The schema mirrors Gravity's lib/schema manifest (apiVersion cluster.gravitational.io/v2)
// so that existing app.yaml files load unchanged. Only `yaml` tags are used: the
// strict decoder in decode.go walks these types by reflection, so every field
// needs a tag and nothing may be inlined.

// Manifest is the typed content of app.yaml.
type Manifest struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	// BaseImageRef is the `baseImage` field as written ("gravity:0.1.0");
	// BaseImage() returns it split and validated.
	BaseImageRef  string         `yaml:"baseImage,omitempty"`
	Logo          string         `yaml:"logo,omitempty"`
	ReleaseNotes  string         `yaml:"releaseNotes,omitempty"`
	Endpoints     []Endpoint     `yaml:"endpoints,omitempty"`
	Dependencies  *Dependencies  `yaml:"dependencies,omitempty"`
	Installer     *Installer     `yaml:"installer,omitempty"`
	NodeProfiles  []NodeProfile  `yaml:"nodeProfiles,omitempty"`
	Providers     *Providers     `yaml:"providers,omitempty"`
	Ingress       *Ingress       `yaml:"ingress,omitempty"`
	Storage       *Storage       `yaml:"storage,omitempty"`
	License       *License       `yaml:"license,omitempty"`
	Hooks         *Hooks         `yaml:"hooks,omitempty"`
	SystemOptions *SystemOptions `yaml:"systemOptions,omitempty"`
	Extensions    *Extensions    `yaml:"extensions,omitempty"`
	WebConfig     string         `yaml:"webConfig,omitempty"`
}

// Metadata identifies the image; name and resourceVersion form its locator.
type Metadata struct {
	Name             string            `yaml:"name"`
	ResourceVersion  string            `yaml:"resourceVersion"`
	Namespace        string            `yaml:"namespace,omitempty"`
	Repository       string            `yaml:"repository,omitempty"`
	Description      string            `yaml:"description,omitempty"`
	Author           string            `yaml:"author,omitempty"`
	CreatedTimestamp *time.Time        `yaml:"createdTimestamp,omitempty"`
	Hidden           bool              `yaml:"hidden,omitempty"`
	Labels           map[string]string `yaml:"labels,omitempty"`
}

// Endpoint is an application endpoint shown after install.
type Endpoint struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description,omitempty"`
	Selector    map[string]string `yaml:"selector,omitempty"`
	ServiceName string            `yaml:"serviceName,omitempty"`
	Namespace   string            `yaml:"namespace,omitempty"`
	Protocol    string            `yaml:"protocol,omitempty"`
	Port        int               `yaml:"port,omitempty"`
	Hidden      bool              `yaml:"hidden,omitempty"`
}

// Dependencies lists package and app locators ("repo/name:version").
type Dependencies struct {
	Packages []string `yaml:"packages,omitempty"`
	Apps     []string `yaml:"apps,omitempty"`
}

// Installer customises the installer.
type Installer struct {
	EULA           *EULA    `yaml:"eula,omitempty"`
	SetupEndpoints []string `yaml:"setupEndpoints,omitempty"`
	Flavors        *Flavors `yaml:"flavors,omitempty"`
}

// EULA is the end-user licence agreement (file://, URL or literal text).
type EULA struct {
	Source string `yaml:"source,omitempty"`
}

// Flavors are the cluster sizes offered at install.
type Flavors struct {
	Prompt      string   `yaml:"prompt,omitempty"`
	Description string   `yaml:"description,omitempty"`
	Default     string   `yaml:"default,omitempty"`
	Items       []Flavor `yaml:"items,omitempty"`
}

// Flavor is one cluster size: how many nodes of which profile.
type Flavor struct {
	Name        string       `yaml:"name"`
	Description string       `yaml:"description,omitempty"`
	Nodes       []FlavorNode `yaml:"nodes"`
}

// FlavorNode is a node count for one profile.
type FlavorNode struct {
	Profile string `yaml:"profile"`
	Count   int    `yaml:"count"`
}

// NodeProfile describes one kind of node.
type NodeProfile struct {
	Name          string            `yaml:"name"`
	Description   string            `yaml:"description,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Taints        []Taint           `yaml:"taints,omitempty"`
	Requirements  *Requirements     `yaml:"requirements,omitempty"`
	Providers     *NodeProviders    `yaml:"providers,omitempty"`
	ExpandPolicy  string            `yaml:"expandPolicy,omitempty"`
	ServiceRole   string            `yaml:"serviceRole,omitempty"`
	SystemOptions *SystemOptions    `yaml:"systemOptions,omitempty"`
}

// Taint is a Kubernetes node taint (corev1.Taint without timeAdded).
type Taint struct {
	Key    string `yaml:"key"`
	Value  string `yaml:"value,omitempty"`
	Effect string `yaml:"effect"`
}

// Requirements are the preflight requirements of a node profile.
type Requirements struct {
	CPU          *CPU          `yaml:"cpu,omitempty"`
	RAM          *RAM          `yaml:"ram,omitempty"`
	OS           []OS          `yaml:"os,omitempty"`
	Network      *Network      `yaml:"network,omitempty"`
	Volumes      []Volume      `yaml:"volumes,omitempty"`
	Devices      []Device      `yaml:"devices,omitempty"`
	CustomChecks []CustomCheck `yaml:"customChecks,omitempty"`
}

// CPU bounds the number of CPUs.
type CPU struct {
	Min int `yaml:"min,omitempty"`
	Max int `yaml:"max,omitempty"`
}

// RAM bounds the memory size.
type RAM struct {
	Min Capacity `yaml:"min,omitempty"`
	Max Capacity `yaml:"max,omitempty"`
}

// OS is a supported operating system (os-release ID and versions).
type OS struct {
	Name     string   `yaml:"name"`
	Versions []string `yaml:"versions,omitempty"`
}

// Network holds network requirements.
type Network struct {
	MinTransferRate TransferRate `yaml:"minTransferRate,omitempty"`
	Ports           []Port       `yaml:"ports,omitempty"`
}

// Port is a set of port ranges that must be free.
type Port struct {
	Protocol string   `yaml:"protocol,omitempty"`
	Ranges   []string `yaml:"ranges"`
}

// Volume is a directory requirement or a mount into the runtime.
type Volume struct {
	Name            string       `yaml:"name,omitempty"`
	Path            string       `yaml:"path"`
	TargetPath      string       `yaml:"targetPath,omitempty"`
	Capacity        Capacity     `yaml:"capacity,omitempty"`
	Filesystems     []string     `yaml:"filesystems,omitempty"`
	CreateIfMissing *bool        `yaml:"createIfMissing,omitempty"`
	SkipIfMissing   *bool        `yaml:"skipIfMissing,omitempty"`
	MinTransferRate TransferRate `yaml:"minTransferRate,omitempty"`
	Hidden          bool         `yaml:"hidden,omitempty"`
	UID             *int         `yaml:"uid,omitempty"`
	GID             *int         `yaml:"gid,omitempty"`
	Mode            string       `yaml:"mode,omitempty"`
	Recursive       bool         `yaml:"recursive,omitempty"`
	SELinuxLabel    string       `yaml:"seLinuxLabel,omitempty"`
}

// Device is a device node to expose in the runtime.
type Device struct {
	Path        string `yaml:"path"`
	Permissions string `yaml:"permissions,omitempty"`
	FileMode    string `yaml:"fileMode,omitempty"`
	UID         *int   `yaml:"uid,omitempty"`
	GID         *int   `yaml:"gid,omitempty"`
}

// CustomCheck is an extra preflight script.
type CustomCheck struct {
	Description string `yaml:"description,omitempty"`
	Script      string `yaml:"script"`
}

// NodeProviders holds per-provider node settings.
type NodeProviders struct {
	AWS *NodeProviderAWS `yaml:"aws,omitempty"`
}

// NodeProviderAWS lists allowed AWS instance types.
type NodeProviderAWS struct {
	InstanceTypes []string `yaml:"instanceTypes,omitempty"`
}

// Providers holds cluster-wide provider settings.
type Providers struct {
	Default string   `yaml:"default,omitempty"`
	AWS     *AWS     `yaml:"aws,omitempty"`
	Azure   *Azure   `yaml:"azure,omitempty"`
	Generic *Generic `yaml:"generic,omitempty"`
}

// AWS holds AWS provider settings.
type AWS struct {
	Network   *Networking `yaml:"network,omitempty"`
	Regions   []string    `yaml:"regions,omitempty"`
	IAMPolicy *IAMPolicy  `yaml:"iamPolicy,omitempty"`
	Disabled  bool        `yaml:"disabled,omitempty"`
}

// IAMPolicy is an AWS IAM policy.
type IAMPolicy struct {
	Version string   `yaml:"version,omitempty"`
	Actions []string `yaml:"actions,omitempty"`
}

// Azure holds Azure provider settings.
type Azure struct {
	Disabled bool `yaml:"disabled,omitempty"`
}

// Generic holds on-premises provider settings.
type Generic struct {
	Network  *Networking `yaml:"network,omitempty"`
	Disabled bool        `yaml:"disabled,omitempty"`
}

// Networking selects the overlay network type (vxlan, wireguard, calico...).
type Networking struct {
	Type string `yaml:"type,omitempty"`
}

// Ingress toggles the bundled ingress controller.
type Ingress struct {
	Nginx *Toggle `yaml:"nginx,omitempty"`
}

// Storage toggles the bundled storage provider.
type Storage struct {
	OpenEBS *Toggle `yaml:"openebs,omitempty"`
}

// Toggle is an {enabled: bool} switch.
type Toggle struct {
	Enabled bool `yaml:"enabled"`
}

// License turns on licence checks at install.
type License struct {
	Enabled bool   `yaml:"enabled,omitempty"`
	Type    string `yaml:"type,omitempty"`
}

// Hook is a lifecycle hook: a Kubernetes Job, inline or as file://path.
type Hook struct {
	Job string `yaml:"job"`
}

// Hooks lists every lifecycle hook Gravity knows; HookNames gives their order.
type Hooks struct {
	ClusterProvision   *Hook `yaml:"clusterProvision,omitempty"`
	ClusterDeprovision *Hook `yaml:"clusterDeprovision,omitempty"`
	NodesProvision     *Hook `yaml:"nodesProvision,omitempty"`
	NodesDeprovision   *Hook `yaml:"nodesDeprovision,omitempty"`
	Install            *Hook `yaml:"install,omitempty"`
	PostInstall        *Hook `yaml:"postInstall,omitempty"`
	Uninstall          *Hook `yaml:"uninstall,omitempty"`
	PreUninstall       *Hook `yaml:"preUninstall,omitempty"`
	PreNodeAdd         *Hook `yaml:"preNodeAdd,omitempty"`
	PostNodeAdd        *Hook `yaml:"postNodeAdd,omitempty"`
	PreNodeRemove      *Hook `yaml:"preNodeRemove,omitempty"`
	PostNodeRemove     *Hook `yaml:"postNodeRemove,omitempty"`
	PreUpdate          *Hook `yaml:"preUpdate,omitempty"`
	Update             *Hook `yaml:"update,omitempty"`
	PostUpdate         *Hook `yaml:"postUpdate,omitempty"`
	Rollback           *Hook `yaml:"rollback,omitempty"`
	PostRollback       *Hook `yaml:"postRollback,omitempty"`
	Status             *Hook `yaml:"status,omitempty"`
	Info               *Hook `yaml:"info,omitempty"`
	LicenseUpdated     *Hook `yaml:"licenseUpdated,omitempty"`
	Start              *Hook `yaml:"start,omitempty"`
	Stop               *Hook `yaml:"stop,omitempty"`
	Dump               *Hook `yaml:"dump,omitempty"`
	Backup             *Hook `yaml:"backup,omitempty"`
	Restore            *Hook `yaml:"restore,omitempty"`
	NetworkInstall     *Hook `yaml:"networkInstall,omitempty"`
	NetworkUpdate      *Hook `yaml:"networkUpdate,omitempty"`
	NetworkRollback    *Hook `yaml:"networkRollback,omitempty"`
}

// HookNames returns every hook name in the order of the Hooks struct,
// which is also the order of App.Hooks.
func HookNames() []string {
	return fieldNames(reflect.TypeFor[Hooks]())
}

// ByName returns the hook with the given yaml name, or nil.
func (h *Hooks) ByName(name string) *Hook {
	if h == nil {
		return nil
	}
	v, ok := fieldByName(h, name)
	if !ok {
		return nil
	}
	hook, _ := v.(*Hook)
	return hook
}

// SystemOptions are runtime (Planet) settings, cluster-wide or per profile.
type SystemOptions struct {
	Runtime         *RuntimeLocator     `yaml:"runtime,omitempty"`
	Docker          *Docker             `yaml:"docker,omitempty"`
	Etcd            *ServiceArgs        `yaml:"etcd,omitempty"`
	Kubelet         *Kubelet            `yaml:"kubelet,omitempty"`
	BaseImage       string              `yaml:"baseImage,omitempty"`
	Dependencies    *SystemDependencies `yaml:"dependencies,omitempty"`
	AllowPrivileged bool                `yaml:"allowPrivileged,omitempty"`
	Args            []string            `yaml:"args,omitempty"`
}

// RuntimeLocator names the runtime package.
type RuntimeLocator struct {
	Repository string `yaml:"repository,omitempty"`
	Name       string `yaml:"name,omitempty"`
	Version    string `yaml:"version,omitempty"`
}

// Docker holds container runtime options.
type Docker struct {
	StorageDriver string   `yaml:"storageDriver,omitempty"`
	Args          []string `yaml:"args,omitempty"`
	Capacity      Capacity `yaml:"capacity,omitempty"`
}

// ServiceArgs holds extra arguments for a system service.
type ServiceArgs struct {
	Args []string `yaml:"args,omitempty"`
}

// Kubelet holds kubelet options.
type Kubelet struct {
	Args        []string `yaml:"args,omitempty"`
	HairpinMode string   `yaml:"hairpinMode,omitempty"`
}

// SystemDependencies pins the runtime package.
type SystemDependencies struct {
	RuntimePackage string `yaml:"runtimePackage,omitempty"`
}

// Extensions toggle optional features.
type Extensions struct {
	Encryption    *Encryption `yaml:"encryption,omitempty"`
	Logs          *Disabled   `yaml:"logs,omitempty"`
	Monitoring    *Disabled   `yaml:"monitoring,omitempty"`
	Kubernetes    *Disabled   `yaml:"kubernetes,omitempty"`
	Configuration *Disabled   `yaml:"configuration,omitempty"`
	Catalog       *Disabled   `yaml:"catalog,omitempty"`
	OpsCenter     *Disabled   `yaml:"opsCenter,omitempty"`
}

// Encryption encrypts the installer packages.
type Encryption struct {
	EncryptionKey string `yaml:"encryptionKey,omitempty"`
	CACert        string `yaml:"caCert,omitempty"`
}

// Disabled is a {disabled: bool} switch.
type Disabled struct {
	Disabled bool `yaml:"disabled"`
}

// Capacity is a size such as "2GB" or "512MiB". The decoder rejects strings
// that do not parse, so Bytes only fails on values built by hand.
type Capacity string

// Bytes returns the size in bytes. KB/MB/GB are read as binary multiples
// (as docker does), so "2GB" is 2 GiB.
func (c Capacity) Bytes() (int64, error) {
	n, err := units.RAMInBytes(string(c))
	if err != nil {
		// go-units only says "invalid size: 'x'"; say what is expected instead.
		return 0, fmt.Errorf("invalid size %q (want a number and a unit, e.g. \"2GB\" or \"512MiB\")", string(c))
	}
	if n < 0 {
		return 0, fmt.Errorf("invalid size %q: must not be negative", string(c))
	}
	return n, nil
}

func (c Capacity) check() error {
	_, err := c.Bytes()
	return err
}

// TransferRate is a rate such as "50MB/s".
type TransferRate string

// BytesPerSecond returns the rate in bytes per second.
func (r TransferRate) BytesPerSecond() (int64, error) {
	size, ok := strings.CutSuffix(string(r), "/s")
	if !ok {
		return 0, fmt.Errorf("invalid transfer rate %q: want a size per second, e.g. \"50MB/s\"", string(r))
	}
	n, err := Capacity(size).Bytes()
	if err != nil {
		return 0, fmt.Errorf("invalid transfer rate %q: %w", string(r), err)
	}
	return n, nil
}

func (r TransferRate) check() error {
	_, err := r.BytesPerSecond()
	return err
}

// checker is implemented by string types whose text must parse; the decoder
// calls check right after setting the value so the error carries a position.
type checker interface {
	check() error
}
