package failpoint

import (
	"os"
	"testing"
)

func TestHitExitsOnTheNthHitOfTheArmedPoint(t *testing.T) {
	var exited []int
	exitFn = func(code int) { exited = append(exited, code) }
	t.Cleanup(func() { exitFn = os.Exit; _ = arm("") })
	if err := arm("b=3"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		Hit("a")
	}
	Hit("b")
	Hit("b")
	if len(exited) != 0 {
		t.Fatalf("exited before the third hit of b: %v", exited)
	}
	Hit("b")
	if len(exited) != 1 || exited[0] != ExitCode {
		t.Fatalf("third hit of b: exits %v, want [%d]", exited, ExitCode)
	}
}

func TestUnarmedNeverExits(t *testing.T) {
	exitFn = func(int) { t.Fatal("exited unarmed") }
	t.Cleanup(func() { exitFn = os.Exit })
	if err := arm(""); err != nil {
		t.Fatal(err)
	}
	Hit("a")
}

func TestBadValues(t *testing.T) {
	t.Cleanup(func() { _ = arm("") })
	for _, v := range []string{"a=0", "a=x", "=2", "a=-1"} {
		if err := arm(v); err == nil {
			t.Errorf("%q: no error", v)
		}
	}
}
