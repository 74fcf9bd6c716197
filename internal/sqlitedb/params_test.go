package sqlitedb

import "testing"

func TestScanPlaceholders(t *testing.T) {
	cases := []struct {
		sql              string
		positional, stmt int
		named            []string
	}{
		{"SELECT ?, ?", 2, 1, nil},
		{"SELECT ?3, ?", 4, 1, nil},
		{"SELECT '?', \"?\", [?], `?` -- ?\n /* ? */", 0, 1, nil},
		{"SELECT :a, @b, $c, :a", 0, 1, []string{"a", "b", "c"}},
		{"SELECT 1; SELECT 2;", 0, 2, nil},
		{"SELECT 'a;b'; -- ;", 0, 1, nil},
		{";;  ", 0, 0, nil},
		{"CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET a = CASE WHEN 1 THEN 2 END; DELETE FROM z; END", 0, 1, nil},
		{"SELECT 'it''s ?'", 0, 1, nil},
		{"SELECT a$b FROM t WHERE x = $v", 0, 1, []string{"v"}},
	}
	for _, c := range cases {
		p := scanPlaceholders(c.sql)
		if p.positional != c.positional || p.statements != c.stmt || len(p.named) != len(c.named) {
			t.Errorf("%q: got %d positional, %d statements, named %v", c.sql, p.positional, p.statements, p.named)
		}
		for _, n := range c.named {
			if !p.named[n] {
				t.Errorf("%q: named %q missing", c.sql, n)
			}
		}
	}
}
