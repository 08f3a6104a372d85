// Package docrefs holds a test only: every file of the repository refers only to files that are
// in it (Markdown links, and *.md names in code, docs, Makefile, scripts and configs), and every
// anchor such a reference names (docs/architecture.md#pod-datapath) is a heading of its target.
// A path that leaves the repository fails even when something is there on this machine.
package docrefs
