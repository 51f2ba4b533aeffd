package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// State is what the directory says of one user: whether it exists, is
// active, its given name, and the groups (by name) it is in.
type State struct {
	Exists    bool
	Active    bool
	GivenName string
	Groups    []string // sorted
}

func (s State) String() string {
	if !s.Exists {
		return "absent"
	}
	st := "active"
	if !s.Active {
		st = "inactive"
	}
	return fmt.Sprintf("%s name=%q groups=[%s]", st, s.GivenName, strings.Join(s.Groups, ","))
}

// Equal compares two states, groups as sets.
func (s State) Equal(o State) bool {
	if !s.Exists || !o.Exists {
		return s.Exists == o.Exists
	}
	return s.Active == o.Active && s.GivenName == o.GivenName && slices.Equal(s.Groups, o.Groups)
}

// OpKind is a kind of directory write.
type OpKind string

const (
	OpCreate     OpKind = "create"
	OpRename     OpKind = "rename"
	OpDeactivate OpKind = "deactivate"
	OpActivate   OpKind = "activate"
	OpDelete     OpKind = "delete"
	OpJoin       OpKind = "join"
	OpLeave      OpKind = "leave"
)

// Outcome is what the writer learned of a write.
type Outcome int

const (
	// Acked: the server answered 2xx; the write must be in the final state.
	Acked Outcome = iota
	// Unknown: the answer was lost (connection cut, 5xx); it may have
	// committed or not.
	Unknown
	// Rejected: a 4xx; it did not happen.
	Rejected
)

// Op is one write to one user; Value is the new name or the group name.
type Op struct {
	Kind    OpKind
	Value   string
	Outcome Outcome
}

// apply is the directory's semantics of op.
func apply(s State, op Op) State {
	switch op.Kind {
	case OpCreate:
		return State{Exists: true, Active: true, GivenName: op.Value}
	case OpDelete:
		return State{}
	}
	if !s.Exists {
		return s
	}
	s.Groups = slices.Clone(s.Groups)
	switch op.Kind {
	case OpRename:
		s.GivenName = op.Value
	case OpDeactivate:
		s.Active = false
	case OpActivate:
		s.Active = true
	case OpJoin:
		if i, found := slices.BinarySearch(s.Groups, op.Value); !found {
			s.Groups = slices.Insert(s.Groups, i, op.Value)
		}
	case OpLeave:
		s.Groups = slices.DeleteFunc(s.Groups, func(g string) bool { return g == op.Value })
	}
	return s
}

// maxUnknown bounds the writes of unknown outcome per user whose
// combinations Possible enumerates (2^n).
const maxUnknown = 10

// Possible lists the final states consistent with ops, applied in order:
// every acknowledged one applied, every unknown one applied or not,
// rejected ones not. ok is false when there are too many unknown writes to
// enumerate.
func Possible(ops []Op) (states []State, ok bool) {
	var unknown []int
	for i, op := range ops {
		if op.Outcome == Unknown {
			unknown = append(unknown, i)
		}
	}
	if len(unknown) > maxUnknown {
		return nil, false
	}
	for mask := 0; mask < 1<<len(unknown); mask++ {
		var s State
		u := 0
		for _, op := range ops {
			switch op.Outcome {
			case Rejected:
				continue
			case Unknown:
				take := mask&(1<<u) != 0
				u++
				if !take {
					continue
				}
			}
			s = apply(s, op)
		}
		if !slices.ContainsFunc(states, s.Equal) {
			states = append(states, s)
		}
	}
	return states, true
}

// Model is the writer's record of the writes it made, per user (by
// userName), safe for concurrent use.
type Model struct {
	mu    sync.Mutex
	users map[string]*ModelUser
	order []string
}

// ModelUser is one user's writes; ID is the SCIM id, "" until a create
// was acknowledged.
type ModelUser struct {
	UserName string
	ID       string
	Ops      []Op
}

func NewModel() *Model { return &Model{users: map[string]*ModelUser{}} }

// Record adds a write's outcome.
func (m *Model) Record(userName string, op Op) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userName]
	if !ok {
		u = &ModelUser{UserName: userName}
		m.users[userName] = u
		m.order = append(m.order, userName)
	}
	u.Ops = append(u.Ops, op)
}

// SetID records the SCIM id of an acknowledged create.
func (m *Model) SetID(userName, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.users[userName]; ok {
		u.ID = id
	}
}

// Users is a copy of the record, in first-write order.
func (m *Model) Users() []ModelUser {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ModelUser, 0, len(m.order))
	for _, n := range m.order {
		u := *m.users[n]
		u.Ops = slices.Clone(u.Ops)
		out = append(out, u)
	}
	return out
}

// Counts are the writes by outcome.
func (m *Model) Counts() (acked, unknown, rejected int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.users {
		for _, op := range u.Ops {
			switch op.Outcome {
			case Acked:
				acked++
			case Unknown:
				unknown++
			default:
				rejected++
			}
		}
	}
	return
}
