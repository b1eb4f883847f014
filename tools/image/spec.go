package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// specJSON describes the images; internal/imagetest reads the same file.
//
//go:embed images.json
var specJSON []byte

// Spec is images.json: the layers by name and the images made of them.
type Spec struct {
	Comment []string          `json:"comment"`
	Layers  map[string][]File `json:"layers"`
	Images  []Image           `json:"images"`
}

// File is one entry of a layer: a regular file, with its content from a
// named source or given as text, or a directory.
type File struct {
	Path string `json:"path"`
	// Type is "dir" for a directory, empty for a regular file.
	Type string `json:"type,omitempty"`
	// Mode is the permission bits in octal, e.g. "0755" or "1777".
	Mode string `json:"mode"`
	UID  int    `json:"uid,omitempty"`
	GID  int    `json:"gid,omitempty"`
	// From names the source of the content: "bin/NAME" for a binary in
	// --bin, "busybox" or "ca-certificates" for those flags' files.
	From string `json:"from,omitempty"`
	// Text is the content itself.
	Text string `json:"text,omitempty"`
	// Applets adds, beside the file, a symlink to it named after each
	// applet the busybox binary lists.
	Applets bool `json:"applets,omitempty"`
}

// Image is one tarball: its file name and tag (with placeholders), the
// Dockerfile target it corresponds to, its layers and its config.
type Image struct {
	Name       string      `json:"name"`
	File       string      `json:"file"`
	Tag        string      `json:"tag"`
	Dockerfile *Dockerfile `json:"dockerfile,omitempty"`
	Layers     []string    `json:"layers"`
	Config     v1.Config   `json:"config"`
}

// Dockerfile names the Dockerfile stage that builds the same image with an
// engine, and the base image that stage starts from.
type Dockerfile struct {
	Target string `json:"target"`
	From   string `json:"from"`
}

// loadSpec decodes a spec strictly and checks that it holds together.
func loadSpec(raw []byte) (*Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("images.json: %w", err)
	}
	if len(s.Images) == 0 {
		return nil, errors.New("images.json: no images")
	}
	for name, files := range s.Layers {
		for _, f := range files {
			if err := f.check(); err != nil {
				return nil, fmt.Errorf("images.json: layer %s: %s: %w", name, f.Path, err)
			}
		}
	}
	for _, img := range s.Images {
		if img.Name == "" || img.File == "" || img.Tag == "" || len(img.Layers) == 0 {
			return nil, fmt.Errorf("images.json: image %q: name, file, tag and layers are required", img.Name)
		}
		for _, l := range img.Layers {
			if _, ok := s.Layers[l]; !ok {
				return nil, fmt.Errorf("images.json: image %s: no layer %q", img.Name, l)
			}
		}
	}

	return &s, nil
}

// check reports what is wrong with a file entry.
func (f File) check() error {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return errors.New("path must be absolute and clean")
	}
	if _, err := f.mode(); err != nil {
		return err
	}
	switch f.Type {
	case "dir":
		if f.From != "" || f.Text != "" || f.Applets {
			return errors.New("a directory has no content")
		}
	case "":
		if (f.From == "") == (f.Text == "") {
			return errors.New("a file needs exactly one of from and text")
		}
		if f.Applets && f.From != "busybox" {
			return errors.New("applets needs from busybox")
		}
	default:
		return fmt.Errorf("unknown type %q", f.Type)
	}

	return nil
}

// mode parses the octal permission bits.
func (f File) mode() (int64, error) {
	m, err := strconv.ParseUint(f.Mode, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q is not octal permission bits", f.Mode)
	}

	return int64(m), nil
}

// expand replaces the {placeholders} of s.
func expand(s string, vars map[string]string) (string, error) {
	var b strings.Builder
	for {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			b.WriteString(s)

			return b.String(), nil
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q: unclosed {", s)
		}
		key := s[open+1 : open+end]
		v, ok := vars[key]
		if !ok {
			return "", fmt.Errorf("%q: unknown placeholder {%s}; known: %s", s, key, strings.Join(slices.Sorted(maps.Keys(vars)), ", "))
		}
		b.WriteString(s[:open])
		b.WriteString(v)
		s = s[open+end+1:]
	}
}
