package store

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// A ranking formula is a small arithmetic expression over an activity's
// counts, age and numeric data, like
//
//	(1 + reactionCounts.like + 2 * commentCount) * decay(ageHours, 24)
//
// It is parsed by expr's parser (github.com/expr-lang/expr) and compiled
// here into a SQL expression by a whitelist walk of the syntax tree: any
// node, variable or function not listed below is refused with the place it
// stands in the formula. The SQL is total: no input makes it fail. Every
// intermediate value is clamped to ±1e100 and values nearer zero than
// 1e-100 become 0 (so double precision never overflows or underflows, which
// PostgreSQL reports as errors), a division by zero gives 0, log(x) takes x
// below 1 as 1, and x ^ y takes x below 0 as 0.

// Limits on formulas.
const (
	maxFormulaLen   = 1000
	maxFormulaNodes = 100
)

// FormulaVariables and FormulaFunctions are what a formula may name, for
// error messages and docs.
const (
	FormulaVariables = "reactionCounts.<kind>, commentCount, ageHours, data.<field>"
	FormulaFunctions = "log(x), decay(x, halfLife), min(x, y), max(x, y)"
)

// Position is where in a formula (or other text input) an error is: line
// and column count from 1, in characters.
type Position struct {
	Line   int
	Column int
}

// RankFormula is a formula compiled to SQL.
type RankFormula struct {
	// sql is a double precision expression over the activity row `a`, with
	// $N placeholders numbered from the first the caller passes to SQL.
	sql string
	// args are the placeholders' values, in order; the snapshot's time
	// and id bound are set per page by bind.
	args []any
	// snapshot lists the indexes in args of the snapshot time (ageHours)
	// and of the id bound (reactions after the snapshot).
	snapTime, snapID []int
}

// formulaCompiler walks a formula's tree.
type formulaCompiler struct {
	src   file.Source
	first int // the number of the first placeholder
	out   *RankFormula
}

// CompileFormula checks a ranking formula and compiles it into SQL whose
// placeholders are numbered from first. Errors are InputErrors of field
// with the formula's position of the fault.
func CompileFormula(field, formula string, first int) (*RankFormula, error) {
	if strings.TrimSpace(formula) == "" {
		return nil, Invalid(field, "must not be empty: write an expression like %q", "reactionCounts.like * decay(ageHours, 24)")
	}
	if len(formula) > maxFormulaLen || !utf8.ValidString(formula) {
		return nil, Invalid(field, "a formula is at most %d bytes of UTF-8 text", maxFormulaLen)
	}
	cfg := conf.CreateNew()
	cfg.MaxNodes = maxFormulaNodes
	cfg.DisableIfOperator = true
	tree, err := parser.ParseWithConfig(formula, cfg)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &InputError{Field: field, Message: fmt.Sprintf("syntax error at line %d, column %d: %s", fe.Line, fe.Column+1, fe.Message),
				Position: &Position{Line: fe.Line, Column: fe.Column + 1}}
		}
		return nil, Invalid(field, "syntax error: %v", err)
	}
	c := &formulaCompiler{src: tree.Source, first: first, out: &RankFormula{}}
	sql, err := c.node(field, tree.Node)
	if err != nil {
		return nil, err
	}
	c.out.sql = sql
	return c.out, nil
}

// Args returns the formula's placeholder values for a page whose snapshot
// is at (ageHours is measured to it) and whose activities and reactions
// made at or after below are not counted.
func (f *RankFormula) Args(at time.Time, below any) []any {
	args := append([]any(nil), f.args...)
	for _, i := range f.snapTime {
		args[i] = at
	}
	for _, i := range f.snapID {
		args[i] = below
	}
	return args
}

// SQL is the formula's SQL expression.
func (f *RankFormula) SQL() string { return f.sql }

// fault is an InputError at a node of the formula.
func (c *formulaCompiler) fault(field string, n ast.Node, format string, args ...any) error {
	e := &file.Error{Location: n.Location()}
	e.Bind(c.src)
	pos := &Position{Line: e.Line, Column: e.Column + 1}
	return &InputError{Field: field, Position: pos,
		Message: fmt.Sprintf("at line %d, column %d: %s", pos.Line, pos.Column, fmt.Sprintf(format, args...))}
}

// arg adds a placeholder and returns its SQL.
func (c *formulaCompiler) arg(v any, cast string) string {
	c.out.args = append(c.out.args, v)
	return fmt.Sprintf("$%d::%s", c.first+len(c.out.args)-1, cast)
}

// bounded clamps a double precision value to ±1e100 and takes values
// nearer zero than 1e-100 as 0, with v written once.
func bounded(v string) string {
	return `(trunc(least(greatest(` + v + `, -1e100::float8), 1e100::float8) * 1e100::float8) / 1e100::float8)`
}

// number is a literal's SQL, bounded like any value.
func number(f float64) string {
	if math.Abs(f) < 1e-100 {
		f = 0
	}
	f = math.Max(-1e100, math.Min(1e100, f))
	return "(" + strconv.FormatFloat(f, 'g', -1, 64) + ")::float8"
}

func (c *formulaCompiler) node(field string, n ast.Node) (string, error) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return number(float64(n.Value)), nil
	case *ast.FloatNode:
		return number(n.Value), nil
	case *ast.IdentifierNode:
		switch n.Value {
		case "ageHours":
			c.out.snapTime = append(c.out.snapTime, len(c.out.args))
			return bounded(`(extract(epoch FROM (` + c.arg(nil, "timestamptz") + ` - a.time)) / 3600)::float8`), nil
		case "commentCount":
			// The count as of the snapshot: the stored count less the
			// comments made since (comment ids are time-ordered).
			c.out.snapID = append(c.out.snapID, len(c.out.args))
			below := c.arg(nil, "uuid")
			return `(a.comment_count - (SELECT count(*) FROM comments cm WHERE cm.activity_id = a.id AND cm.id >= ` + below + `))::float8`, nil
		case "reactionCounts", "data":
			return "", c.fault(field, n, "%s is a map: name one of its fields, like %s.like", n.Value, n.Value)
		}
		return "", c.fault(field, n, "unknown variable %q: a formula may use %s", n.Value, FormulaVariables)
	case *ast.MemberNode:
		return c.member(field, n)
	case *ast.UnaryNode:
		x, err := c.node(field, n.Node)
		if err != nil {
			return "", err
		}
		switch n.Operator {
		case "-":
			return "(-" + x + ")", nil
		case "+":
			return x, nil
		}
		return "", c.fault(field, n, "operator %q is not allowed: use + - * / ^", n.Operator)
	case *ast.BinaryNode:
		return c.binary(field, n)
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return "", c.fault(field, n, "only the functions %s may be called", FormulaFunctions)
		}
		return c.call(field, n, id.Value, n.Arguments)
	case *ast.BuiltinNode:
		return c.call(field, n, n.Name, n.Arguments)
	case *ast.StringNode:
		return "", c.fault(field, n, "a formula computes a number: text like %q has no place here", n.Value)
	}
	return "", c.fault(field, n, "this is not allowed in a formula: use numbers, %s, + - * / ^ and %s", FormulaVariables, FormulaFunctions)
}

func (c *formulaCompiler) binary(field string, n *ast.BinaryNode) (string, error) {
	switch n.Operator {
	case "+", "-", "*", "/", "^", "**":
	default:
		return "", c.fault(field, n, "operator %q is not allowed: use + - * / ^", n.Operator)
	}
	l, err := c.node(field, n.Left)
	if err != nil {
		return "", err
	}
	r, err := c.node(field, n.Right)
	if err != nil {
		return "", err
	}
	switch n.Operator {
	case "+", "-", "*":
		return bounded(l + " " + n.Operator + " " + r), nil
	case "/":
		return bounded("coalesce(" + l + " / nullif(" + r + ", 0), 0)"), nil
	}
	return power(l, r), nil
}

// power is x ^ y as exp(y ln x) with x below 0 taken as 0 (1e-100) and the
// exponent bounded so the result stays within ±1e100.
func power(x, y string) string {
	return bounded(`exp(least(greatest(` + y + ` * ln(greatest(` + x + `, 1e-100::float8)), -230.25850929940458::float8), 230.25850929940458::float8))`)
}

func (c *formulaCompiler) call(field string, n ast.Node, name string, args []ast.Node) (string, error) {
	want := map[string]int{"log": 1, "decay": 2, "min": 2, "max": 2}[name]
	if want == 0 {
		return "", c.fault(field, n, "unknown function %q: a formula may call %s", name, FormulaFunctions)
	}
	if len(args) != want {
		return "", c.fault(field, n, "%s takes %d argument(s), not %d", name, want, len(args))
	}
	sql := make([]string, len(args))
	for i, a := range args {
		var err error
		if sql[i], err = c.node(field, a); err != nil {
			return "", err
		}
	}
	switch name {
	case "log":
		return "ln(greatest(" + sql[0] + ", 1::float8))", nil
	case "min":
		return "least(" + sql[0] + ", " + sql[1] + ")", nil
	case "max":
		return "greatest(" + sql[0] + ", " + sql[1] + ")", nil
	}
	// decay(x, halfLife) = 0.5 ^ (x / halfLife): 1 at 0, 1/2 at halfLife.
	half, ok := literal(args[1])
	if !ok || half <= 0 {
		return "", c.fault(field, args[1], "decay's half-life must be a positive number, like decay(ageHours, 24)")
	}
	return bounded(`exp(least(greatest(` + sql[0] + ` * ` + number(-math.Ln2/half) + `, -230.25850929940458::float8), 230.25850929940458::float8))`), nil
}

// literal is the value of a number written in the formula.
func literal(n ast.Node) (float64, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return float64(n.Value), true
	case *ast.FloatNode:
		return n.Value, true
	}
	return 0, false
}

// member compiles reactionCounts.<kind> and data.<field>[.<field>...].
func (c *formulaCompiler) member(field string, n *ast.MemberNode) (string, error) {
	var path []string
	var cur ast.Node = n
	for {
		m, ok := cur.(*ast.MemberNode)
		if !ok {
			break
		}
		prop, ok := m.Property.(*ast.StringNode)
		if !ok || m.Method {
			return "", c.fault(field, m, "name a field by name, like data.score or reactionCounts.like")
		}
		path = append([]string{prop.Value}, path...)
		cur = m.Node
	}
	root, ok := cur.(*ast.IdentifierNode)
	if !ok {
		return "", c.fault(field, n, "only reactionCounts and data have fields")
	}
	switch root.Value {
	case "reactionCounts":
		if len(path) != 1 {
			return "", c.fault(field, n, "reactionCounts has one level: reactionCounts.like")
		}
		if err := CheckReactionKind(field, path[0]); err != nil {
			return "", c.fault(field, n, "%q is not a reaction kind: 1 to %d letters, digits, _ or -", path[0], maxReactionKind)
		}
		kind := c.arg(path[0], "text")
		c.out.snapID = append(c.out.snapID, len(c.out.args))
		below := c.arg(nil, "uuid")
		// The count as of the snapshot: the stored count less the
		// reactions made since (a short range of reactions_latest).
		return `(coalesce((SELECT rc.count FROM reaction_counts rc WHERE rc.activity_id = a.id AND rc.kind = ` + kind + `), 0)
			- (SELECT count(*) FROM reactions r WHERE r.activity_id = a.id AND r.id >= ` + below + ` AND r.kind = ` + kind + `))::float8`, nil
	case "data":
		p := c.arg(path, "text[]")
		return `CASE WHEN jsonb_typeof(a.data #> ` + p + `) = 'number' THEN (trunc(least(greatest((a.data #>> ` + p + `)::numeric, -1e100), 1e100) * 1e100) / 1e100)::float8 ELSE 0::float8 END`, nil
	}
	return "", c.fault(field, root, "unknown variable %q: a formula may use %s", root.Value, FormulaVariables)
}
