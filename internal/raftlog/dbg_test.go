package raftlog
import "testing"
func TestDbgTrunc(t *testing.T) {
	dir := tempDir(t)
	s, _ := openStore(t, dir, 16<<10, nil)
	filled(1, 20)(t, s)
	if err := s.DeleteRange(15, 20); err != nil { t.Fatal(err) }
	checkLog(t, s, 1, 14, 1, size)
	s.Close()
	s, _ = openStore(t, dir, 16<<10, nil)
	checkLog(t, s, 1, 14, 1, size)
}
