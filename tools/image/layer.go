package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// sources are where a File's "from" content comes from.
type sources struct {
	bin     string // directory of the bin/NAME binaries
	busybox string
	caCerts string

	applets []string // busybox --list, once
}

// path returns the file a "from" name stands for.
func (s *sources) path(from string) (string, error) {
	switch {
	case from == "busybox":
		return s.busybox, nil
	case from == "ca-certificates":
		return s.caCerts, nil
	case strings.HasPrefix(from, "bin/"):
		name := strings.TrimPrefix(from, "bin/")
		if name == "" || strings.Contains(name, "/") {
			return "", fmt.Errorf("from %q: bin/NAME names one file", from)
		}

		return filepath.Join(s.bin, name), nil
	}

	return "", fmt.Errorf("from %q: not bin/NAME, busybox or ca-certificates", from)
}

// busyboxApplets returns the applet names the busybox binary lists. It
// runs the binary, so it must be built for this machine.
func (s *sources) busyboxApplets() ([]string, error) {
	if s.applets != nil {
		return s.applets, nil
	}
	out, err := exec.Command(s.busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list (the debug image links an entry per applet; busybox must run on this machine): %w", s.busybox, err)
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if n == "." || n == ".." || strings.Contains(n, "/") {
			return nil, fmt.Errorf("%s --list: %q is no applet name", s.busybox, n)
		}
		names = append(names, n)
	}
	if !slices.Contains(names, "sh") {
		return nil, fmt.Errorf("%s --list has no sh: the debug image needs /busybox/sh", s.busybox)
	}
	s.applets = names

	return names, nil
}

// entry is one member of a layer's tar.
type entry struct {
	hdr      tar.Header
	data     []byte
	explicit bool // listed in the spec, not a parent made up for it
}

// layerContent is a layer's uncompressed tar and the ELF machines of the
// binaries in it.
type layerContent struct {
	tar      []byte
	machines map[elf.Machine][]string // machine -> paths
}

// buildLayer writes the files as a tar: entries sorted by path, every
// parent directory present, fixed owners and modes from the spec, and
// every time set to mtime, so that the same inputs give the same bytes.
func buildLayer(files []File, src *sources, mtime time.Time) (*layerContent, error) {
	entries := map[string]*entry{}
	lc := &layerContent{machines: map[elf.Machine][]string{}}
	add := func(p string, e *entry) error {
		if old, ok := entries[p]; ok && old.explicit && e.explicit {
			return fmt.Errorf("%s is listed twice", p)
		} else if ok && old.explicit {
			return nil
		}
		entries[p] = e
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if _, ok := entries[dir]; !ok {
				entries[dir] = &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}}
			}
		}

		return nil
	}
	for _, f := range files {
		mode, err := f.mode()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		hdr := tar.Header{Mode: mode, Uid: f.UID, Gid: f.GID}
		e := &entry{explicit: true}
		if f.Type == "dir" {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			e.data = []byte(f.Text)
			if f.From != "" {
				p, err := src.path(f.From)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", f.Path, err)
				}
				if e.data, err = os.ReadFile(p); err != nil {
					return nil, fmt.Errorf("%s: %w", f.Path, err)
				}
				if m, ok := elfMachine(e.data); ok {
					lc.machines[m] = append(lc.machines[m], f.Path)
				}
			}
		}
		e.hdr = hdr
		if err := add(f.Path, e); err != nil {
			return nil, err
		}
		if f.Applets {
			names, err := src.busyboxApplets()
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				link := path.Join(path.Dir(f.Path), n)
				if link == f.Path {
					continue
				}
				if err := add(link, &entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Linkname: path.Base(f.Path), Mode: 0o777}}); err != nil {
					return nil, err
				}
			}
		}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(entries)) {
		e := entries[p]
		hdr := e.hdr
		hdr.Name = strings.TrimPrefix(p, "/")
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		hdr.Size = int64(len(e.data))
		hdr.ModTime = mtime
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", p, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	lc.tar = buf.Bytes()

	return lc, nil
}

// layer returns the content as an image layer. It compresses the tar
// once, here, with the standard library's gzip (the same bytes for the
// same input and Go release), and the layer keeps those bytes: the
// library would compress again for every digest and every tarball.
func (lc *layerContent) layer() (v1.Layer, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(lc.tar); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}

	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	})
}

// elfMachine returns the machine of an ELF file's content.
func elfMachine(data []byte) (elf.Machine, bool) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return 0, false
	}

	return f.Machine, true
}

// goarch returns the GOARCH (the OCI architecture) of an ELF machine.
func goarch(m elf.Machine) (string, error) {
	switch m {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_ARM:
		return "arm", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	}

	return "", errors.New("unsupported ELF machine " + m.String())
}
