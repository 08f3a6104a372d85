// Package docrefs holds a test only: every file of the repository refers only to files that are
// in it (Markdown links and *.md names in code, docs, Makefile, scripts and configs).
package docrefs
