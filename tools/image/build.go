package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// options are the builder's inputs besides the spec.
type options struct {
	out        string // directory of the tarballs
	bin        string // directory of the bin/NAME binaries
	busybox    string
	caCerts    string
	version    string
	repository string
	pauseTag   string
	epoch      int64
}

// result is one written tarball.
type result struct {
	Path string
	Tag  string
	ID   v1.Hash // the config's digest, which docker shows as the image ID
}

// build writes one docker-archive tarball per image of the spec.
func build(spec *Spec, o options) ([]result, error) {
	if o.version == "" {
		return nil, errors.New("no version")
	}
	vars := map[string]string{"version": o.version, "repository": o.repository, "pauseTag": o.pauseTag}
	mtime := time.Unix(o.epoch, 0).UTC()
	src := &sources{bin: o.bin, busybox: o.busybox, caCerts: o.caCerts}
	built := map[string]*builtLayer{}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}

	var results []result
	for _, img := range spec.Images {
		tagName, err := expand(img.Tag, vars)
		if err != nil {
			return nil, fmt.Errorf("image %s: tag: %w", img.Name, err)
		}
		tag, err := name.NewTag(tagName, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("image %s: tag %q: %w", img.Name, tagName, err)
		}
		file, err := expand(img.File, vars)
		if err != nil {
			return nil, fmt.Errorf("image %s: file: %w", img.Name, err)
		}
		if file != filepath.Base(file) {
			return nil, fmt.Errorf("image %s: file %q must be a plain file name", img.Name, file)
		}

		cfg := v1.ConfigFile{
			OS:      "linux",
			Created: v1.Time{Time: mtime},
			RootFS:  v1.RootFS{Type: "layers"},
			Config:  img.Config,
		}
		cfg.Config.Labels = map[string]string{}
		for k, v := range img.Config.Labels {
			if cfg.Config.Labels[k], err = expand(v, vars); err != nil {
				return nil, fmt.Errorf("image %s: label %s: %w", img.Name, k, err)
			}
		}
		machines := map[elf.Machine][]string{}
		var adds []mutate.Addendum
		for _, ln := range img.Layers {
			bl, ok := built[ln]
			if !ok {
				if bl, err = buildNamedLayer(spec.Layers[ln], src, mtime); err != nil {
					return nil, fmt.Errorf("layer %s: %w", ln, err)
				}
				built[ln] = bl
			}
			for m, paths := range bl.machines {
				machines[m] = append(machines[m], paths...)
			}
			adds = append(adds, mutate.Addendum{
				Layer: bl.layer,
				History: v1.History{
					Created:   v1.Time{Time: mtime},
					CreatedBy: "tools/image: layer " + ln,
					Comment:   "stund " + o.version,
				},
			})
		}
		if cfg.Architecture, err = architecture(machines); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}

		base, err := mutate.ConfigFile(empty.Image, &cfg)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		image, err := mutate.Append(base, adds...)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		p := filepath.Join(o.out, file)
		if err := writeTarball(p, tag, image); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		id, err := image.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		results = append(results, result{Path: p, Tag: tag.String(), ID: id})
	}

	return results, nil
}

// builtLayer is a layer of the spec, made once for every image that has it.
type builtLayer struct {
	layer    v1.Layer
	machines map[elf.Machine][]string
}

// buildNamedLayer makes the layer of these files.
func buildNamedLayer(files []File, src *sources, mtime time.Time) (*builtLayer, error) {
	lc, err := buildLayer(files, src, mtime)
	if err != nil {
		return nil, err
	}
	l, err := lc.layer()
	if err != nil {
		return nil, err
	}

	return &builtLayer{layer: l, machines: lc.machines}, nil
}

// architecture returns the one architecture of an image's binaries.
func architecture(machines map[elf.Machine][]string) (string, error) {
	if len(machines) == 0 {
		return "", errors.New("no ELF binary to take the architecture from")
	}
	if len(machines) > 1 {
		var parts []string
		for m, paths := range machines {
			parts = append(parts, fmt.Sprintf("%s: %s", m, strings.Join(paths, " ")))
		}
		slices.Sort(parts)

		return "", fmt.Errorf("binaries of more than one architecture (%s)", strings.Join(parts, "; "))
	}
	for m := range machines {
		return goarch(m)
	}

	panic("unreachable")
}

// writeTarball writes the image as a docker-archive tarball to p, through
// a temporary file in the same directory so p is whole or absent.
func writeTarball(p string, tag name.Tag, img v1.Image) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := tarball.Write(tag, img, f); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	return os.Rename(f.Name(), p)
}

// report prints what was written, one line per tarball.
func report(w io.Writer, results []result) {
	for _, r := range results {
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\n", r.Path, r.Tag, r.ID)
	}
}
