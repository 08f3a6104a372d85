// Package prereqs holds the tests of hack/prereqs.sh, the one step that installs what flatnet
// needs on a machine (make prereqs, make demo, make test, .ci/run). It has no code of its own.
//
// The tests run the script against fake id, go, dpkg-query, apt-get and tool installers in a
// temporary directory, so they never touch the machine's packages; one of them runs it against the
// real machine with an apt-get that refuses to run, to show that a complete machine is only probed.
package prereqs
