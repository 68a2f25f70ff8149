package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
)

// Ranking formulas: what compiles, what is refused and where, and that the
// SQL of any formula answers a number whatever the activity holds.

func TestRankFormulaErrors(t *testing.T) {
	for _, c := range []struct {
		formula   string
		line, col int
		says      string
	}{
		{"reactionCounts.like * ", 1, 22, "syntax error"},
		{"(1 + 2", 1, 6, "syntax error"},
		{"1 +\n  * 2", 2, 3, "syntax error"},
		{"likes + 1", 1, 1, `unknown variable "likes"`},
		{"1 + sqrt(ageHours)", 1, 5, `unknown function "sqrt"`},
		{"len(data)", 1, 1, `unknown function "len"`},
		{"decay(ageHours, 0)", 1, 17, "half-life must be a positive number"},
		{"decay(ageHours, ageHours)", 1, 17, "half-life must be a positive number"},
		{"1 + reactionCounts", 1, 5, "is a map"},
		{"reactionCounts.like.more", 1, 21, "one level"},
		{`reactionCounts["a b"]`, 1, 15, "not a reaction kind"},
		{"ageHours > 2", 1, 10, `operator ">" is not allowed`},
		{`"text"`, 1, 1, "computes a number"},
		{"log(1, 2)", 1, 1, "takes 1 argument"},
		{"x.y", 1, 1, `unknown variable "x"`},
	} {
		_, err := store.CompileFormula("formula", c.formula, 1)
		var in *store.InputError
		if !errors.As(err, &in) || in.Position == nil {
			t.Errorf("%q: got %v, want an input error with a position", c.formula, err)
			continue
		}
		if in.Field != "formula" || in.Position.Line != c.line || in.Position.Column != c.col || !contains(in.Message, c.says) {
			t.Errorf("%q: got %s at %d:%d, want %q at %d:%d", c.formula, in.Message, in.Position.Line, in.Position.Column, c.says, c.line, c.col)
		}
	}
	for _, f := range []string{"", "   ", string(make([]byte, 1001))} {
		if _, err := store.CompileFormula("formula", f, 1); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%q: got %v, want invalid", f[:min(len(f), 5)], err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestRankFormulaIsTotal evaluates formulas in PostgreSQL over activities
// whose data holds extreme numbers: none fails, and each gives the value
// the formula's rules say.
func TestRankFormulaIsTotal(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	eval := func(formula, data string, time time.Time) float64 {
		t.Helper()
		f, err := store.CompileFormula("formula", formula, 3)
		if err != nil {
			t.Fatalf("%s: %v", formula, err)
		}
		args := append([]any{data, time}, f.Args(at, uuid.Max)...)
		var v float64
		q := fmt.Sprintf(`SELECT %s FROM (SELECT gen_random_uuid() AS id, $2::timestamptz AS time, $1::jsonb AS data, 0::bigint AS comment_count) a`, f.SQL())
		if err := s.DB().QueryRow(ctx, q, args...).Scan(&v); err != nil {
			t.Fatalf("%s over %s: %v", formula, data, err)
		}
		return v
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }
	day := at.Add(-24 * time.Hour)
	for _, c := range []struct {
		formula, data string
		when          time.Time
		want          float64
	}{
		{"data.x * data.x * data.x", `{"x": 1e400}`, at, 1e100},
		{"data.x * data.x", `{"x": 1e-400}`, at, 0},
		{"data.x * data.x", `{"x": -1e-60}`, at, 0},
		{"1 / data.x", `{"x": 0}`, at, 0},
		{"1 / data.missing", `{}`, at, 0},
		{"data.x", `{"x": "12"}`, at, 0},
		{"data.a.b + 1", `{"a": {"b": 2.5}}`, at, 3.5},
		{"data.x", `null`, at, 0},
		{"0 ^ -1", `{}`, at, 1e100},
		{"(-8) ^ 0.5", `{}`, at, 0},
		{"2 ^ 10", `{}`, at, 1024},
		{"10 ^ 1000", `{}`, at, 1e100},
		{"log(-5) + log(0) + log(1)", `{}`, at, 0},
		{"log(data.x)", `{"x": 2.718281828459045}`, at, 1},
		{"decay(ageHours, 24)", `{}`, day, 0.5},
		{"decay(ageHours, 1e-300)", `{}`, day, 0},
		{"ageHours", `{}`, day, 24},
		{"max(1, 2) - min(1, 2) + -3", `{}`, at, -2},
		{"reactionCounts.like + commentCount", `{}`, at, 0},
		{"2 ** 3 ** 2", `{}`, at, 512},
	} {
		if got := eval(c.formula, c.data, c.when); !near(got, c.want) {
			t.Errorf("%s over %s = %v, want %v", c.formula, c.data, got, c.want)
		}
	}
}
