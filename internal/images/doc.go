// Package images builds flatnet's container images from its static binaries without a Docker
// engine, and reads them back for a runtime that runs them (docs/images.md).
//
// Build writes two images, flatnet-ipamd (with the CNI plugin) and flatnet-lbcontroller, each a
// multi-arch image index, into an OCI image layout and one OCI-layout tarball per image for
// kind and containerd. Same binaries, same bytes: tar headers, config times and gzip output are
// fixed, so two builds give the same digests. Lookup, Unpack and ImageConfig are the other side:
// the lab's node agent resolves a reference in the layout to its platform's image, unpacks it
// safely (nothing written outside the target directory, atomically, once per digest) and reads
// how to start it.
package images
