package nodeagent

import (
	"fmt"
	"strings"
)

// The built-in programs an image maps to (docs/node-agent.md).
const (
	programEcho    = "echo"
	programGeneric = "generic"
	programOCI     = "oci" // an image of the layout (--image-layout)
)

// imageRepo is the repository of the built-in images: flatnet.io/<program>[:tag].
const imageRepo = "flatnet.io/"

// supportedImages names the images the agent runs, for the message of an unknown one.
const supportedImages = "flatnet.io/echo[:tag] (HTTP/UDP echo server) and flatnet.io/generic[:tag] (runs the container's command)"

// program returns the built-in program an image reference names, or an error saying which
// images exist. The tag is free: every tag of an image is the same program.
func program(image string) (string, error) {
	name, ok := strings.CutPrefix(image, imageRepo)
	if ok {
		if i := strings.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
		if i := strings.IndexByte(name, ':'); i >= 0 {
			if name[i+1:] == "" {
				return "", fmt.Errorf("image %q has an empty tag: the node agent runs %s", image, supportedImages)
			}
			name = name[:i]
		}
		switch name {
		case programEcho, programGeneric:
			return name, nil
		}
	}
	return "", fmt.Errorf("image %q is not one the node agent can run: it runs only %s", image, supportedImages)
}

// imageID is what the status reports as the image's ID: the built-in program it runs.
func imageID(image string) string {
	p, err := program(image)
	if err != nil {
		return ""
	}
	return imageRepo + p + "@builtin"
}

// resolveImage maps an image reference to what runs it: a built-in program, a program of the
// node (--image-binary), or an image of the layout.
func (a *Agent) resolveImage(ref string) (string, *ociImage, error) {
	if strings.HasPrefix(ref, imageRepo) {
		p, err := program(ref)
		return p, nil, err
	}
	if b, ok := a.cfg.imageBinaryFor(ref); ok {
		im, err := a.images.binary(b)
		if err != nil {
			return "", nil, fmt.Errorf("image %q (--image-binary %s): %w", ref, b, err)
		}
		return programOCI, im, nil
	}
	im, err := a.images.get(ref)
	if err == nil {
		return programOCI, im, nil
	}
	if a.cfg.ImageLayout == "" {
		_, perr := program(ref)
		return "", nil, perr
	}
	return "", nil, fmt.Errorf("image %q: %w; the node agent runs the images of its layout %s and %s", ref, err, a.cfg.ImageLayout, supportedImages)
}
