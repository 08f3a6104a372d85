// Package lab runs flatnet on one machine without Docker: fakecloud (with its netns fabric) as a
// process, one namespace per node with a real ipamd process inside, and pods as namespaces wired
// by the CNI plugin through libcni, as a container runtime does. It never touches the root
// namespace's routes or addresses; everything it makes carries its prefix and is removed by Down,
// also after a crash.
package lab
