package fastpath

// The BPF object is generated from bpf/fastpath.c and committed, so building flatnet needs no
// clang. To regenerate (Debian: apt-get install clang libbpf-dev): make generate. The second
// step records the source's digest next to it; TestObjectMatchesSource fails when the C source
// changed and the object was not regenerated.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel fastpath bpf/fastpath.c -- -I/usr/include/x86_64-linux-gnu
//go:generate sh -c "sha256sum bpf/fastpath.c > bpf/fastpath.c.sha256"
