// Package imagetest holds the tests of the container images.
//
// tools/image/images.json describes the images `make image` writes; the
// tests check it against the Dockerfile (base image, user, entrypoint,
// exposed ports, labels, the copied binaries and their build flags) and
// against the chart's defaults (repositories, tags, user, the helm test
// pod's shell). They open the tarballs themselves, without an engine:
// manifest.json and its tag, the config's digest, each layer's digest and
// diff ID, every entry's owner, mode and time, and exactly the files the
// description lists; they check the binaries are static, run stund's
// --version, the debug image's busybox shell and the pause program, and
// compare a second build byte for byte.
//
// The tests run `make image` into a temporary directory; with
// STUND_IMAGE_DIR set (make unit sets it to the output of its own `make
// image`) they check that build and build once more to compare. Without
// Debian's busybox-static they skip, except in CI (CI set).
package imagetest
