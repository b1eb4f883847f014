// The image builder of `make image` (docs/development.md#container-images):
// writes stund's container images as docker-archive tarballs with
// go-containerregistry, and the pause program of the pause image. A module of
// its own: these dependencies stay out of stund's go.mod.
module github.com/stund/stund/tools/image

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
