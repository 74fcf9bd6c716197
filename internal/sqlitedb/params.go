package sqlitedb

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// placeholders are the parameters a statement's SQL text refers to.
type placeholders struct {
	positional int             // highest ? / ?NNN index
	named      map[string]bool // names without their :, @ or $ prefix
	variables  int             // distinct named placeholders, as SQLite counts them (:a and @a are two)
	hashNamed  string          // a #name placeholder, which the driver cannot bind
	statements int             // number of statements in the text
	blank      bool            // text holds no statement at all
}

// scanPlaceholders tokenizes SQL just far enough to find parameter
// placeholders and statement boundaries, skipping string literals, quoted
// identifiers and comments. It never decides whether SQL is valid: SQLite does.
func scanPlaceholders(sql string) placeholders {
	p := placeholders{named: map[string]bool{}}
	seen := map[string]bool{} // named placeholders with their prefix
	inStatement := false
	depthBeginEnd := 0 // CREATE TRIGGER bodies hold ';' inside BEGIN ... END
	var words []string
	for i := 0; i < len(sql); {
		if j, code := skipNonCode(sql, i); j > i {
			i, inStatement = j, inStatement || code
			continue
		}
		c := sql[i]
		switch {
		case c == ';':
			if depthBeginEnd == 0 {
				if inStatement {
					p.statements++
				}
				inStatement = false
				words = words[:0]
			}
			i++
			continue
		case c == '?':
			i = p.positionalAt(sql, i)
		case c == ':' || c == '@' || c == '$' || c == '#':
			j, ok := variableEnd(sql, i)
			if ok {
				p.addNamed(sql[i:j], seen)
			}
			i = j
		case isIdentByte(c):
			j := i
			for j < len(sql) && (isIdentByte(sql[j]) || sql[j] == '$') { // SQLite allows $ inside names
				j++
			}
			w := strings.ToUpper(sql[i:j])
			words = append(words, w)
			depthBeginEnd = trackTriggerBody(words, w, depthBeginEnd)
			i = j
		default:
			i++
		}
		inStatement = true
	}
	if inStatement {
		p.statements++
	}
	p.blank = p.statements == 0
	return p
}

// positionalAt records the ? or ?NNN placeholder at sql[i] and returns the
// index after it. A bare ? takes the number after the largest so far, as in
// SQLite.
func (p *placeholders) positionalAt(sql string, i int) int {
	j := i + 1
	for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
		j++
	}
	n := p.positional + 1
	if j > i+1 {
		n, _ = strconv.Atoi(sql[i+1 : j])
	}
	p.positional = max(p.positional, n)
	return j
}

// variableEnd returns the index after the named placeholder at sql[i] (its
// prefix :, @, $ or #), read as SQLite's tokenizer reads one: identifier
// bytes, which include $, with "::" allowed among them and, after at least
// one, a "(...)" suffix holding no white space. It returns i+1 and false
// when there is no placeholder there (no identifier byte after the prefix,
// or a suffix not closed): SQLite refuses such text.
func variableEnd(sql string, i int) (int, bool) {
	n, j := 0, i+1
	for ; j < len(sql); j++ {
		c := sql[j]
		if isIdentByte(c) || c == '$' {
			n++
			continue
		}
		if c == '(' && n > 0 {
			k := j + 1
			for k < len(sql) && sql[k] != ')' && !isSQLiteSpace(sql[k]) {
				k++
			}
			if k == len(sql) || sql[k] != ')' {
				return i + 1, false
			}
			return k + 1, true
		}
		if c != ':' || j+1 == len(sql) || sql[j+1] != ':' {
			break
		}
		j++ // "::" inside the name
	}
	if n == 0 {
		return i + 1, false
	}
	return j, true
}

// addNamed records the named placeholder v (with its prefix), once.
func (p *placeholders) addNamed(v string, seen map[string]bool) {
	switch {
	case v[0] == '#':
		p.hashNamed = v
	case !seen[v]:
		seen[v] = true
		p.named[v[1:]] = true
		p.variables++
	}
}

// isSQLiteSpace is SQLite's sqlite3Isspace.
func isSQLiteSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// skipNonCode returns the index after the literal, quoted identifier,
// comment or white space at sql[i] (or i if there is none there), and
// whether what it skipped is part of a statement (literals are; comments and
// white space are not).
func skipNonCode(sql string, i int) (int, bool) {
	c := sql[i]
	switch {
	case c == '\'' || c == '"' || c == '`':
		return skipQuoted(sql, i, c), true
	case c == '[':
		if j := strings.IndexByte(sql[i:], ']'); j >= 0 {
			return i + j + 1, true
		}
		return len(sql), true
	case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
		if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
			return i + j + 1, false
		}
		return len(sql), false
	case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
		if j := strings.Index(sql[i+2:], "*/"); j >= 0 {
			return i + j + 4, false
		}
		return len(sql), false
	case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
		return i + 1, false
	}
	return i, false
}

// trackTriggerBody counts BEGIN/END nesting inside CREATE TRIGGER so that the
// semicolons of a trigger body do not end the statement.
func trackTriggerBody(words []string, w string, depth int) int {
	isTrigger := len(words) >= 2 && words[0] == "CREATE" &&
		(words[1] == "TRIGGER" || (len(words) >= 3 && (words[1] == "TEMP" || words[1] == "TEMPORARY") && words[2] == "TRIGGER"))
	if !isTrigger {
		return depth
	}
	switch w {
	case "BEGIN", "CASE":
		return depth + 1
	case "END":
		if depth > 0 {
			return depth - 1
		}
	}
	return depth
}

func skipQuoted(sql string, i int, q byte) int {
	for j := i + 1; j < len(sql); j++ {
		if sql[j] == q {
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(sql)
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// textError says why the text's placeholders or statements cannot be run,
// whatever parameters come with it.
func (p *placeholders) textError() error {
	if p.blank {
		return fmt.Errorf("empty SQL")
	}
	if p.statements > 1 {
		return fmt.Errorf("holds %d SQL statements; send each as its own Statement", p.statements)
	}
	if p.hashNamed != "" {
		return fmt.Errorf("parameter %s: #name parameters are not supported; use :name, @name or $name", p.hashNamed)
	}
	if p.positional > 0 && len(p.named) > 0 {
		return fmt.Errorf("mixes positional (?) and named (:name) parameters; use one kind")
	}
	return nil
}

// argsError reports a mismatch between the placeholders and the parameters
// supplied: positional is their number, named their names.
func (p *placeholders) argsError(positional int, named []string) error {
	if positional != p.positional {
		return fmt.Errorf("SQL has %d positional parameter(s), %d given", p.positional, positional)
	}
	var unknown []string
	for _, n := range named {
		if !p.named[n] {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown named parameter(s) %s", strings.Join(unknown, ", "))
	}
	if len(p.named) != len(named) {
		var missing []string
		given := map[string]bool{}
		for _, n := range named {
			given[n] = true
		}
		for n := range p.named {
			if !given[n] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		return fmt.Errorf("no value for named parameter(s) %s", strings.Join(missing, ", "))
	}
	return nil
}
