package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"

	"sigs.k8s.io/yaml"
)

// The kubeconfig schema (clientcmd/api/v1), reduced to what we write. A
// local copy keeps client-go out of this package; the field names and the
// base64 encoding of []byte match what kubectl reads.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string      `json:"name"`
	Cluster kubeCluster `json:"cluster"`
}

type kubeCluster struct {
	Server                   string `json:"server"`
	CertificateAuthorityData []byte `json:"certificate-authority-data"`
}

type namedUser struct {
	Name string   `json:"name"`
	User kubeUser `json:"user"`
}

type kubeUser struct {
	ClientCertificateData []byte `json:"client-certificate-data"`
	ClientKeyData         []byte `json:"client-key-data"`
}

type namedContext struct {
	Name    string      `json:"name"`
	Context kubeContext `json:"context"`
}

type kubeContext struct {
	Cluster string `json:"cluster"`
	User    string `json:"user"`
}

// Kubeconfig returns a kubeconfig that reaches server as user with the
// client pair kp, trusting ca; everything is embedded, so the file stands
// alone. The cluster entry is named after the CA's common name, which
// NewCASet sets to the cluster name.
func Kubeconfig(server string, ca *x509.Certificate, kp *KeyPair, user string) ([]byte, error) {
	if err := checkKubeconfigArgs(server, ca, kp, user); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	keyPEM, err := kp.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cluster := ca.Subject.CommonName
	if cluster == "" {
		cluster = "kubernetes"
	}
	ctx := user + "@" + cluster
	cfg := kubeconfig{
		APIVersion: "v1",
		Kind:       "Config",
		Clusters: []namedCluster{{Name: cluster, Cluster: kubeCluster{
			Server:                   server,
			CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: ca.Raw}),
		}}},
		Users:          []namedUser{{Name: user, User: kubeUser{ClientCertificateData: kp.CertPEM(), ClientKeyData: keyPEM}}},
		Contexts:       []namedContext{{Name: ctx, Context: kubeContext{Cluster: cluster, User: user}}},
		CurrentContext: ctx,
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return out, nil
}

func checkKubeconfigArgs(server string, ca *x509.Certificate, kp *KeyPair, user string) error {
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("server %q: %w", server, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("server %q: want https://host[:port]", server)
	}
	if ca == nil || kp == nil || kp.Cert == nil || kp.Key == nil {
		return errors.New("missing CA certificate or client key pair")
	}
	if user == "" {
		return errors.New("empty user name")
	}
	return nil
}
