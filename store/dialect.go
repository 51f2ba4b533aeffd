package store

import (
	"cmp"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/scimsync/scimsync/config"
)

// dialect is what differs between SQLite and Postgres, in one value (after
// dex's SQL flavor): the backend is chosen once, in Open (dialectOf), and
// every query elsewhere reads as one function that names the difference it
// depends on, a field here, never the backend itself.
type dialect struct {
	// name is what Store.Dialect reports: "postgres" or "sqlite".
	name string
	// open makes the gorm dialector for a parsed DATABASE_URL.
	open func(db config.Database) (gorm.Dialector, error)
	// pool sizes the connection pool; maxOpen <= 0 takes the default.
	pool func(db *sql.DB, maxOpen int)

	// rowLocks says SELECT … FOR … locks rows. SQLite transactions take
	// the database's write lock when they begin (_txlock=immediate), so
	// they never interleave and row locks have nothing to add there.
	rowLocks bool
	// orgLock takes a transaction-scoped advisory lock on a class and an
	// organization id, "" where transactions serialise anyway (SQLite).
	orgLock string
	// migrationLock and migrationUnlock take and release, on one
	// connection, the lock that keeps migrators starting at once apart,
	// "" where each migration's transaction serialises them (SQLite).
	migrationLock, migrationUnlock string
	// placeholders expands the words of migrations that differ (see
	// migration).
	placeholders *strings.Replacer
	// postgresOnlyMigrations says the migrations marked postgresOnly run.
	postgresOnlyMigrations bool

	// pageSettings, noJIT and relaxDurability set the current transaction
	// up (see Store.pageSettings, Store.noJIT, Store.RelaxDurability); ""
	// where there is nothing to set.
	pageSettings, noJIT, relaxDurability string
	// writingWith says a WITH clause may hold an INSERT … RETURNING whose
	// rows the statement's own INSERT reads (Postgres); SQLite's may not.
	writingWith bool
	// settingsTx says a plan statement runs in a transaction of its own,
	// which its transaction-local settings (noJIT) last for.
	settingsTx bool
	// analyze says the planner plans by statistics that RefreshStats
	// re-reads; SQLite plans by its indexes.
	analyze bool
	// rawHotPaths says the SCIM hot paths run as hand-written statements
	// (hotpath.go) rather than through gorm.
	rawHotPaths bool

	// param is the prefix of a numbered parameter ($1 or ?1).
	param string
	// typed gives a parameter the type the database cannot infer where it
	// stands (a select list).
	typed func(param, pgType string) string
	// timestampParam is a gorm parameter holding a time where its type is
	// not inferred.
	timestampParam string
	// textToBytes converts a text expression to a byte string.
	textToBytes func(text string) string
	// jsonArrayAgg aggregates the values of a text column into a JSON
	// array, as text.
	jsonArrayAgg func(column string) string
	// list returns SQL yielding values as a one-column relation named
	// value, and the one argument that carries them however many they are.
	list func(values []string) (string, any)
	// rows returns SQL yielding the rows of cols as a relation, its
	// values bound to q as few parameters however many rows there are.
	rows func(q *query, cols []column) (string, error)
	// lookupEach left-joins the row of table (as alias) that cond finds
	// for each row before it, by an index lookup per row.
	lookupEach func(table, alias, cond string) string
	// joinEach is lookupEach as an inner join: rows before it that cond
	// finds nothing for drop out (and the rows found may be locked).
	joinEach func(table, alias, cond string) string
	// batchRows is how many rows of columns bound parameters each one
	// statement should write.
	batchRows func(columns int) int
}

// lock returns the row-lock suffix of a SELECT, "" without row locks.
// strength is what follows FOR: "NO KEY UPDATE" for an exclusive lock that
// still lets foreign-key inserts (which key-share lock the parent) through,
// "SHARE", or "UPDATE SKIP LOCKED".
func (d *dialect) lock(strength string) string {
	if !d.rowLocks {
		return ""
	}
	return " FOR " + strength
}

// column is one column of rows that dialect.rows binds: its name, its
// Postgres type, and its values, text or flags.
type column struct {
	name, pgType string
	text         []string
	flags        []bool
}

func (c column) values() any {
	if c.flags != nil {
		return c.flags
	}
	return c.text
}

func (c column) at(i int) any {
	if c.flags != nil {
		return c.flags[i]
	}
	return c.text[i]
}

// dialectOf is the dialect of a DATABASE_URL's driver.
func dialectOf(driver string) (*dialect, error) {
	switch driver {
	case "postgres":
		return &postgresDialect, nil
	case "sqlite":
		return &sqliteDialect, nil
	}
	return nil, fmt.Errorf("open database: unknown driver %q", driver)
}

var postgresDialect = dialect{
	name: "postgres",
	open: func(db config.Database) (gorm.Dialector, error) {
		return postgres.New(postgres.Config{DSN: withConnectTimeout(db.DSN)}), nil
	},
	pool: func(db *sql.DB, maxOpen int) {
		n := maxOpen
		if n <= 0 {
			n = postgresConns(runtime.GOMAXPROCS(0))
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxIdleTime(5 * time.Minute)
	},
	rowLocks: true,
	// The two-key form keeps clear of single-key locks such as the
	// migrations'.
	orgLock:         "SELECT pg_advisory_xact_lock(?, hashtext(?))",
	migrationLock:   "SELECT pg_advisory_lock($1)",
	migrationUnlock: "SELECT pg_advisory_unlock($1)",
	placeholders: strings.NewReplacer(
		"{{serial}}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
		"{{ts}}", "TIMESTAMPTZ",
		"{{bytes}}", "BYTEA",
		"{{unlogged}}", "UNLOGGED",
	),
	postgresOnlyMigrations: true,
	pageSettings:           "SELECT set_config('synchronous_commit', 'off', true), set_config('jit', 'off', true)",
	noJIT:                  "SELECT set_config('jit', 'off', true)",
	relaxDurability:        "SET LOCAL synchronous_commit TO OFF",
	settingsTx:             true,
	writingWith:            true,
	analyze:                true,
	rawHotPaths:            true,
	param:                  "$",
	typed:                  func(param, pgType string) string { return param + "::" + pgType },
	timestampParam:         "CAST(? AS TIMESTAMPTZ)",
	textToBytes:            func(text string) string { return "convert_to(" + text + ", 'UTF8')" },
	jsonArrayAgg:           func(column string) string { return "CAST(json_agg(" + column + ") AS TEXT)" },
	// A Postgres array, in binary.
	list: func(values []string) (string, any) {
		return "SELECT unnest(CAST(? AS text[])) AS value", textArray(values)
	},
	// Each column one array parameter, bound in binary.
	rows: func(q *query, cols []column) (string, error) {
		var b strings.Builder
		b.WriteString("SELECT * FROM unnest(")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(q.arg(c.values()) + "::" + c.pgType + "[]")
		}
		b.WriteString(") AS t(")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.name)
		}
		b.WriteString(")")
		return b.String(), nil
	},
	// A lateral subquery: the planner estimates a page's unnest at 10 rows
	// and, with statistics that lag a growing organization, would
	// hash-join the page against the organization's every row instead, so
	// that each page costs more than the last.
	lookupEach: func(table, alias, cond string) string {
		return "LEFT JOIN LATERAL (SELECT * FROM " + table + " " + alias + " WHERE " + cond + " LIMIT 1) " + alias + " ON TRUE"
	},
	joinEach: func(table, alias, cond string) string {
		return "JOIN LATERAL (SELECT * FROM " + table + " " + alias + " WHERE " + cond + " LIMIT 1) " + alias + " ON TRUE"
	},
	// Postgres takes thousands of parameters cheaply.
	batchRows: func(columns int) int { return max(1, min(1000, 30000/columns)) },
}

var sqliteDialect = dialect{
	name: "sqlite",
	open: func(db config.Database) (gorm.Dialector, error) {
		dsn, err := sqliteDSN(db.Path)
		if err != nil {
			return nil, err
		}
		return sqlite.Open(dsn), nil
	},
	pool: func(db *sql.DB, maxOpen int) {
		// SQLite allows one writer; a small pool keeps readers concurrent
		// under WAL while writers queue on the busy timeout.
		n := cmp.Or(max(maxOpen, 0), 8)
		db.SetMaxOpenConns(n)
		// Keep them all idle between bursts: opening one re-runs the pragmas.
		db.SetMaxIdleConns(n)
	},
	placeholders: strings.NewReplacer(
		"{{serial}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{{ts}}", "TIMESTAMP",
		"{{bytes}}", "BLOB",
		"{{unlogged}}", "",
	),
	param:          "?",
	typed:          func(param, _ string) string { return param }, // SQLite takes values as they come
	timestampParam: "?",
	textToBytes:    func(text string) string { return "CAST(" + text + " AS BLOB)" },
	jsonArrayAgg:   func(column string) string { return "json_group_array(" + column + ")" },
	// A JSON array that SQLite unpacks.
	list: func(values []string) (string, any) {
		b, _ := json.Marshal(values) // strings always marshal
		return "SELECT value FROM json_each(?)", string(b)
	},
	// One JSON parameter: the SQLite driver's cost grows with the square
	// of a statement's parameters.
	rows: func(q *query, cols []column) (string, error) {
		n := 0
		if len(cols) > 0 {
			n = len(cols[0].text) + len(cols[0].flags)
		}
		arr := make([][]any, n)
		for i := range arr {
			arr[i] = make([]any, len(cols))
			for j, c := range cols {
				arr[i][j] = c.at(i)
			}
		}
		b, err := json.Marshal(arr)
		if err != nil {
			return "", err
		}
		var s strings.Builder
		s.WriteString("SELECT ")
		for j, c := range cols {
			if j > 0 {
				s.WriteString(", ")
			}
			s.WriteString("value ->> " + strconv.Itoa(j) + " AS " + c.name)
		}
		s.WriteString(" FROM json_each(" + q.arg(string(b)) + ")")
		return s.String(), nil
	},
	// Without LATERAL, SQLite plans the join by its indexes.
	lookupEach: func(table, alias, cond string) string {
		return "LEFT JOIN " + table + " " + alias + " ON " + cond
	},
	joinEach: func(table, alias, cond string) string {
		return "JOIN " + table + " " + alias + " ON " + cond
	},
	// The SQLite driver matches each parameter to its argument by a linear
	// search, so a statement's cost grows with the square of its
	// parameters: many small statements are faster than a few large ones
	// (and SQLite, in-process, pays little per statement).
	batchRows: func(columns int) int { return max(1, 512/columns) },
}

// arrayEscaper quotes an element of a Postgres array literal. It is built
// once: building a Replacer costs more than using it.
var arrayEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// textArray is a Postgres text[] parameter, in the array literal form.
type textArray []string

// Value implements driver.Valuer.
func (a textArray) Value() (driver.Value, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		arrayEscaper.WriteString(&b, v)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}

// postgresConns is the default pool for a process with cpus CPUs: four
// connections per CPU, and at least 8. Postgres runs a process per connection: many more busy
// connections than the database has CPUs only queue inside Postgres, where
// lock holders lose their CPU and every commit waits longer, instead of
// in the pool. On a 2-CPU machine a pool of 32 made POST /Users at 1,000/s
// wait a second at p99 where 8 waited about 100 ms (BENCHMARKS.md).
func postgresConns(cpus int) int { return max(8, 4*cpus) }
