package clusterservice

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// handlePackage describes a package a joining node installs: only the
// runtime package is served (nothing of the application is a node's).
func (s *Service) handlePackage(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	if !strings.HasPrefix(ref, RuntimePackage+":") {
		s.fail(w, http.StatusNotFound, fmt.Errorf("package %s is not served to nodes", ref))
		return
	}
	if s.cfg.Packages == nil {
		s.fail(w, http.StatusNotFound, errors.New("this master has no package store"))
		return
	}
	meta, _, layers, err := s.cfg.Packages.PackageLayers(ref)
	if err != nil {
		s.fail(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, PackageInfo{Ref: ref, Meta: meta, Layers: layers})
}

// handleBlob serves one layer of the runtime package, with ranges so that
// an interrupted download continues where it stopped.
func (s *Service) handleBlob(w http.ResponseWriter, r *http.Request) {
	h, err := v1.NewHash(r.PathValue("digest"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	if ok, err := s.runtimeBlob(h); err != nil || !ok {
		s.fail(w, http.StatusNotFound, fmt.Errorf("blob %s is not served to nodes", h))
		return
	}
	rc, _, err := s.cfg.Packages.Blob(h)
	if err != nil {
		s.fail(w, http.StatusNotFound, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", time.Time{}, rs)
		return
	}
	_, _ = io.Copy(w, rc)
}

// runtimeBlob says whether h is a layer of a runtime package: the store
// also holds the application's images, which are not a node's to fetch.
func (s *Service) runtimeBlob(h v1.Hash) (bool, error) {
	if s.cfg.Packages == nil {
		return false, nil
	}
	base, err := s.baseVersion()
	if err != nil {
		return false, err
	}
	_, _, layers, err := s.cfg.Packages.PackageLayers(RuntimePackage + ":" + base)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(layers, func(d v1.Descriptor) bool { return d.Digest == h }), nil
}
