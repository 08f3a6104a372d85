// Command reporter is the node agent tests' container program: it writes what it sees (its
// identity, working directory, environment, the files it was asked about, whether its root is
// writable) as JSON to a file, then sleeps or exits with the code it was given.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"
)

type report struct {
	UID, GID  int
	Wd        string
	Env       []string
	Files     map[string]string
	RootWrite string
	Args      []string
}

func main() {
	// reporter OUT EXIT-CODE|sleep [PATH...]
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: reporter OUT EXIT-CODE|sleep [PATH...]")
		os.Exit(2)
	}
	r := report{UID: os.Getuid(), GID: os.Getgid(), Env: os.Environ(), Files: map[string]string{}, Args: os.Args}
	r.Wd, _ = os.Getwd()
	for _, p := range os.Args[3:] {
		b, err := os.ReadFile(p)
		if err != nil {
			r.Files[p] = "error: " + err.Error()
			continue
		}
		r.Files[p] = string(b)
	}
	if err := os.WriteFile("/root-write-probe", []byte("x"), 0o644); err != nil {
		r.RootWrite = err.Error()
	} else {
		r.RootWrite = "ok"
	}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(os.Args[1]+".tmp", b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	if err := os.Rename(os.Args[1]+".tmp", os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	if os.Args[2] == "sleep" {
		for {
			time.Sleep(time.Hour)
		}
	}
	code, _ := strconv.Atoi(os.Args[2])
	os.Exit(code)
}
