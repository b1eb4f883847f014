package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// archive is a docker-archive tarball (`docker save`'s format) as the
// tests read it: the one image in it, its config and its layers.
type archive struct {
	repoTags []string
	config   configFile
	layers   []*layer
}

// manifestEntry is one image of manifest.json.
type manifestEntry struct {
	Config       string          `json:"Config"`
	RepoTags     []string        `json:"RepoTags"`
	Layers       []string        `json:"Layers"`
	LayerSources json.RawMessage `json:"LayerSources,omitempty"`
}

// configFile is an image config as the builder writes it; decoded
// strictly, so a field it starts to write shows up here.
type configFile struct {
	Architecture string      `json:"architecture"`
	OS           string      `json:"os"`
	Created      time.Time   `json:"created"`
	Config       imageConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		Created    time.Time `json:"created"`
		CreatedBy  string    `json:"created_by"`
		Comment    string    `json:"comment"`
		EmptyLayer bool      `json:"empty_layer"`
	} `json:"history"`
}

// layer is one layer's entries by absolute path.
type layer struct {
	name    string
	entries map[string]*fileEntry
}

// fileEntry is one member of a layer.
type fileEntry struct {
	hdr  *tar.Header
	data []byte
}

// sha256Hex returns the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)

	return hex.EncodeToString(sum[:])
}

// readArchive opens a docker-archive tarball and checks what `docker
// load`, `podman load` and `ctr images import` rely on: one manifest.json
// entry, its config and layers present, the config's name its digest,
// each layer's name its digest and its uncompressed digest the config's
// diff ID, and no member nobody refers to.
func readArchive(p string) (*archive, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	members := map[string][]byte{}
	var order []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("member %s: type %c, want a regular file", hdr.Name, hdr.Typeflag)
		}
		if _, dup := members[hdr.Name]; dup {
			return nil, fmt.Errorf("member %s twice", hdr.Name)
		}
		if members[hdr.Name], err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("member %s: %w", hdr.Name, err)
		}
		order = append(order, hdr.Name)
	}

	var manifest []manifestEntry
	if err := decodeStrict(members["manifest.json"], &manifest); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if len(manifest) != 1 {
		return nil, fmt.Errorf("manifest.json has %d images, want 1", len(manifest))
	}
	m := manifest[0]
	if len(m.LayerSources) > 0 && string(m.LayerSources) != "null" {
		return nil, fmt.Errorf("manifest.json: LayerSources %s: foreign layers a registry would have to serve", m.LayerSources)
	}
	used := map[string]bool{"manifest.json": true}
	a := &archive{repoTags: m.RepoTags}

	raw, ok := members[m.Config]
	if !ok {
		return nil, fmt.Errorf("manifest.json names config %s, which the tarball lacks", m.Config)
	}
	used[m.Config] = true
	if want := strings.TrimSuffix(strings.TrimPrefix(m.Config, "sha256:"), ".json"); sha256Hex(raw) != want {
		return nil, fmt.Errorf("config %s has digest sha256:%s", m.Config, sha256Hex(raw))
	}
	if err := decodeStrict(raw, &a.config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if a.config.RootFS.Type != "layers" {
		return nil, fmt.Errorf("config: rootfs.type %q, want layers", a.config.RootFS.Type)
	}
	if len(m.Layers) != len(a.config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("manifest.json lists %d layers, the config %d diff IDs", len(m.Layers), len(a.config.RootFS.DiffIDs))
	}
	for i, name := range m.Layers {
		blob, ok := members[name]
		if !ok {
			return nil, fmt.Errorf("manifest.json names layer %s, which the tarball lacks", name)
		}
		used[name] = true
		if want := strings.TrimSuffix(strings.TrimSuffix(path.Base(name), ".gz"), ".tar"); sha256Hex(blob) != want {
			return nil, fmt.Errorf("layer %s has digest sha256:%s", name, sha256Hex(blob))
		}
		plain := blob
		if bytes.HasPrefix(blob, []byte{0x1f, 0x8b}) {
			zr, err := gzip.NewReader(bytes.NewReader(blob))
			if err != nil {
				return nil, fmt.Errorf("layer %s: %w", name, err)
			}
			if plain, err = io.ReadAll(zr); err != nil {
				return nil, fmt.Errorf("layer %s: gunzip: %w", name, err)
			}
		}
		if got, want := "sha256:"+sha256Hex(plain), a.config.RootFS.DiffIDs[i]; got != want {
			return nil, fmt.Errorf("layer %d (%s): uncompressed digest %s, the config's diff ID %s", i, name, got, want)
		}
		l, err := readLayer(name, plain)
		if err != nil {
			return nil, err
		}
		a.layers = append(a.layers, l)
	}
	for _, name := range order {
		if !used[name] {
			return nil, fmt.Errorf("member %s: nothing in manifest.json refers to it", name)
		}
	}

	return a, nil
}

// readLayer reads a layer's tar: clean relative names, each once, no
// whiteouts (nothing below to delete).
func readLayer(name string, plain []byte) (*layer, error) {
	l := &layer{name: name, entries: map[string]*fileEntry{}}
	tr := tar.NewReader(bytes.NewReader(plain))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return l, nil
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", name, err)
		}
		rel := strings.TrimSuffix(hdr.Name, "/")
		p := "/" + rel
		if rel == "" || strings.HasPrefix(rel, "/") || path.Clean(p) != p {
			return nil, fmt.Errorf("layer %s: entry name %q is not clean and relative", name, hdr.Name)
		}
		if strings.HasPrefix(path.Base(p), ".wh.") {
			return nil, fmt.Errorf("layer %s: whiteout %s", name, hdr.Name)
		}
		if _, dup := l.entries[p]; dup {
			return nil, fmt.Errorf("layer %s: %s twice", name, p)
		}
		e := &fileEntry{hdr: hdr}
		if e.data, err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("layer %s: %s: %w", name, p, err)
		}
		l.entries[p] = e
	}
}

// rootfs returns the image's files, later layers over earlier ones.
func (a *archive) rootfs() map[string]*fileEntry {
	fs := map[string]*fileEntry{}
	for _, l := range a.layers {
		for p, e := range l.entries {
			fs[p] = e
		}
	}

	return fs
}

// extract writes the image's files under dir, as far as an unprivileged
// user can: regular files, directories and symlinks, owners left out.
func (a *archive) extract(dir string) error {
	fs := a.rootfs()
	for _, p := range slices.Sorted(maps.Keys(fs)) {
		e := fs[p]
		target := dir + p
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.WriteFile(target, e.data, os.FileMode(e.hdr.Mode&0o777)|0o200); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(e.hdr.Linkname, target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: type %c", p, e.hdr.Typeflag)
		}
	}

	return nil
}
