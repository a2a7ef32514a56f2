package pki

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"sigs.k8s.io/yaml"
)

// EncryptionConfigName is kube-apiserver's EncryptionConfiguration
// (--encryption-provider-config) under a master's PKI directory. It holds
// the cluster's keys for Secrets at rest, so it is a secret like a CA key:
// written KeyMode, made once per cluster with the CAs and handed to every
// master with them, never to a worker.
const EncryptionConfigName = "encryption-config.yaml"

// Secrets are encrypted with secretbox (XSalsa20-Poly1305 with a 32-byte
// key), the strongest of kube-apiserver's local providers: aescbc is open
// to padding oracles and aesgcm needs a new key every 200k writes. The
// identity provider last keeps data written before encryption (or during
// a rotation) readable.
const (
	encryptionAPIVersion = "apiserver.config.k8s.io/v1"
	encryptionKind       = "EncryptionConfiguration"
	secretboxKeySize     = 32
	// EncryptedPrefix starts every value kube-apiserver stores in etcd
	// with the first key of this config: "k8s:enc:secretbox:v1:<key name>:".
	EncryptedPrefix = "k8s:enc:secretbox:v1:"
)

type encryptionConfig struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Resources  []encryptedResources `json:"resources"`
}

type encryptedResources struct {
	Resources []string             `json:"resources"`
	Providers []encryptionProvider `json:"providers"`
}

type encryptionProvider struct {
	Secretbox *encryptionKeys `json:"secretbox,omitempty"`
	Identity  *struct{}       `json:"identity,omitempty"`
}

type encryptionKeys struct {
	Keys []encryptionKey `json:"keys"`
}

type encryptionKey struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// NewEncryptionConfig makes a cluster's EncryptionConfiguration with one
// fresh key, key1.
func NewEncryptionConfig() ([]byte, error) {
	key := make([]byte, secretboxKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	c := encryptionConfig{APIVersion: encryptionAPIVersion, Kind: encryptionKind,
		Resources: []encryptedResources{{Resources: []string{"secrets"}, Providers: []encryptionProvider{
			{Secretbox: &encryptionKeys{Keys: []encryptionKey{{Name: "key1", Secret: base64.StdEncoding.EncodeToString(key)}}}},
			{Identity: &struct{}{}},
		}}}}
	return yaml.Marshal(c)
}

// CheckEncryptionConfig validates a cluster's EncryptionConfiguration as
// gravity writes it, or as an administrator rotating keys edits it
// (docs/security.md): Secrets are listed, and the provider that writes
// them is secretbox with well-formed, distinct keys.
func CheckEncryptionConfig(data []byte) error {
	var c encryptionConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return fmt.Errorf("%s: %w", EncryptionConfigName, err)
	}
	if c.APIVersion != encryptionAPIVersion || c.Kind != encryptionKind {
		return fmt.Errorf("%s: want %s %s, got %q %q", EncryptionConfigName, encryptionAPIVersion, encryptionKind, c.APIVersion, c.Kind)
	}
	for _, r := range c.Resources {
		if !slices.Contains(r.Resources, "secrets") {
			continue
		}
		if len(r.Providers) == 0 || r.Providers[0].Secretbox == nil {
			return fmt.Errorf("%s: secrets would be written unencrypted: the first provider must be secretbox", EncryptionConfigName)
		}
		for _, p := range r.Providers {
			if err := checkProvider(p); err != nil {
				return fmt.Errorf("%s: %w", EncryptionConfigName, err)
			}
		}
		return nil
	}
	return fmt.Errorf("%s: secrets are not encrypted: no resources entry lists them", EncryptionConfigName)
}

func checkProvider(p encryptionProvider) error {
	if (p.Secretbox == nil) == (p.Identity == nil) {
		return errors.New("each provider must be exactly one of secretbox and identity")
	}
	if p.Secretbox == nil {
		return nil
	}
	if len(p.Secretbox.Keys) == 0 {
		return errors.New("secretbox has no keys")
	}
	names := map[string]bool{}
	var secrets [][]byte
	for _, k := range p.Secretbox.Keys {
		if k.Name == "" || names[k.Name] {
			return fmt.Errorf("secretbox key name %q is empty or repeated", k.Name)
		}
		names[k.Name] = true
		raw, err := base64.StdEncoding.DecodeString(k.Secret)
		if err != nil || len(raw) != secretboxKeySize {
			return fmt.Errorf("secretbox key %s: want %d bytes in base64", k.Name, secretboxKeySize)
		}
		for _, s := range secrets {
			if bytes.Equal(s, raw) {
				return fmt.Errorf("secretbox key %s repeats another key", k.Name)
			}
		}
		secrets = append(secrets, raw)
	}
	return nil
}
