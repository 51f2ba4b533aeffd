package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Divergence is one way the final (or a sampled) state breaks a promise.
type Divergence struct {
	Check   string `json:"check"` // writes, local, deprovision, mail, schedule
	Org     string `json:"org,omitempty"`
	Subject string `json:"subject"`
	Detail  string `json:"detail"`
}

func (d Divergence) String() string {
	return fmt.Sprintf("[%s] %s %s: %s", d.Check, d.Org, d.Subject, d.Detail)
}

// CheckWrites compares the writes a client made (and what it learned of
// each) with the directory's final state, keyed by userName: every
// acknowledged write must be reflected, writes of unknown outcome may go
// either way, and the directory holds no user nobody wrote.
func CheckWrites(org string, users []ModelUser, dir map[string]State) []Divergence {
	var out []Divergence
	known := map[string]bool{}
	for _, u := range users {
		key := strings.ToLower(u.UserName)
		known[key] = true
		got := dir[key]
		want, ok := Possible(u.Ops)
		if !ok {
			continue // too many unknown outcomes to say; the local check still covers it
		}
		if !slices.ContainsFunc(want, got.Equal) {
			ws := make([]string, len(want))
			for i, w := range want {
				ws[i] = w.String()
			}
			out = append(out, Divergence{Check: "writes", Org: org, Subject: u.UserName,
				Detail: fmt.Sprintf("directory has %s; acknowledged writes allow only {%s}", got, strings.Join(ws, " | "))})
		}
	}
	for _, key := range slices.Sorted(maps.Keys(dir)) {
		if !known[key] && dir[key].Exists {
			out = append(out, Divergence{Check: "writes", Org: org, Subject: key, Detail: "in the directory but never written"})
		}
	}
	return out
}

// Member statuses of the admin API.
const (
	statusPending       = "pending_setup"
	statusActive        = "active"
	statusDeprovisioned = "deprovisioned"
)

// LocalMember is a member as the admin API shows it, with its groups.
type LocalMember struct {
	Status    string
	FirstName string
	Groups    []string // sorted
}

// CheckLocal compares local state with directory state, both keyed by
// e-mail: active in the directory ⇒ pending_setup or active; inactive ⇒
// deprovisioned, or no member if it never was one (everMember says whether
// it was seen as a member during the run: a user made inactive before any
// converge saw it is rightly never provisioned); absent ⇒ no member; names
// and groups equal.
func CheckLocal(org string, dir map[string]State, local map[string]LocalMember, everMember func(email string) bool) []Divergence {
	var out []Divergence
	bad := func(email, format string, args ...any) {
		out = append(out, Divergence{Check: "local", Org: org, Subject: email, Detail: fmt.Sprintf(format, args...)})
	}
	emails := slices.Sorted(maps.Keys(dir))
	for _, email := range emails {
		d := dir[email]
		m, has := local[email]
		switch {
		case !d.Exists:
			if has {
				bad(email, "gone from the directory but a local member (%s)", m.Status)
			}
			continue
		case !has && !d.Active && !everMember(email):
			continue
		case !has:
			bad(email, "in the directory (%s) but no local member", d)
			continue
		case d.Active && m.Status != statusPending && m.Status != statusActive:
			bad(email, "active in the directory, %s locally", m.Status)
		case !d.Active && m.Status != statusDeprovisioned:
			bad(email, "inactive in the directory, %s locally", m.Status)
		}
		if m.FirstName != d.GivenName {
			bad(email, "given name %q in the directory, %q locally", d.GivenName, m.FirstName)
		}
		if !slices.Equal(m.Groups, d.Groups) {
			bad(email, "groups [%s] in the directory, [%s] locally", strings.Join(d.Groups, ","), strings.Join(m.Groups, ","))
		}
	}
	for _, email := range slices.Sorted(maps.Keys(local)) {
		if _, ok := dir[email]; !ok {
			bad(email, "a local member (%s) the directory never had", local[email].Status)
		}
	}
	return out
}

// DeprovisionWatch finds members deprovisioned or removed while they were
// active in the directory at every point of the run. The writer calls
// Touch before any write that could make a user inactive or gone, so a
// sample taken after it never blames that write's effect.
type DeprovisionWatch struct {
	mu      sync.Mutex
	touched map[string]bool // org/email
	seen    map[string]bool // seen as a live member at least once
	member  map[string]bool // seen as a member in any status
	flagged map[string]bool // reported already
	Samples int
}

func NewDeprovisionWatch() *DeprovisionWatch {
	return &DeprovisionWatch{touched: map[string]bool{}, seen: map[string]bool{}, member: map[string]bool{}, flagged: map[string]bool{}}
}

// Touch marks a user as possibly not active from now on.
func (w *DeprovisionWatch) Touch(org, email string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.touched[org+"/"+strings.ToLower(email)] = true
}

// Observe checks one sample of an organization's members (e-mail →
// status) and returns the new divergences in it.
func (w *DeprovisionWatch) Observe(org string, members map[string]string) []Divergence {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.Samples++
	var out []Divergence
	flag := func(key, email, detail string) {
		if !w.flagged[key] {
			w.flagged[key] = true
			out = append(out, Divergence{Check: "deprovision", Org: org, Subject: email, Detail: detail})
		}
	}
	for _, email := range slices.Sorted(maps.Keys(members)) {
		key := org + "/" + email
		w.member[key] = true
		if members[email] == statusDeprovisioned {
			if !w.touched[key] {
				flag(key, email, "deprovisioned while active in the directory throughout")
			}
			continue
		}
		w.seen[key] = true
	}
	prefix := org + "/"
	for _, key := range slices.Sorted(maps.Keys(w.seen)) {
		email, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		if _, present := members[email]; !present && !w.touched[key] {
			flag(key, email, "removed while active in the directory throughout")
		}
	}
	return out
}

// EverMember says whether a sample saw the user as a member.
func (w *DeprovisionWatch) EverMember(org string) func(email string) bool {
	return func(email string) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.member[org+"/"+strings.ToLower(email)]
	}
}

// SentMail is one message the SMTP sink accepted: its recipient and the
// invite link in it.
type SentMail struct {
	To   string
	Link string
}

// CheckMail finds e-mails beyond one per (membership, send number): the
// same link delivered twice, or more messages to a recipient than send
// decisions that may have gone out for it (claims: recipient → mail-log
// keys sent, uncertain or still sending).
func CheckMail(msgs []SentMail, claims map[string]int) []Divergence {
	var out []Divergence
	perLink := map[string]int{}
	perTo := map[string]int{}
	for _, m := range msgs {
		perLink[m.Link]++
		perTo[strings.ToLower(m.To)]++
	}
	for _, link := range slices.Sorted(maps.Keys(perLink)) {
		if n := perLink[link]; n > 1 {
			out = append(out, Divergence{Check: "mail", Subject: redactLink(link), Detail: fmt.Sprintf("the same invite link was delivered %d times", n)})
		}
	}
	for _, to := range slices.Sorted(maps.Keys(perTo)) {
		if n, c := perTo[to], claims[to]; n > c {
			out = append(out, Divergence{Check: "mail", Subject: to, Detail: fmt.Sprintf("%d invite e-mails delivered, %d send decisions", n, c)})
		}
	}
	return out
}

// redactLink keeps an invite link's token out of the report.
func redactLink(link string) string {
	i := strings.Index(link, "token=")
	if i < 0 {
		return link
	}
	tok := link[i+len("token="):]
	return link[:i] + "token=" + tok[:min(len(tok), 4)] + "…"
}

// Enqueue is one scheduler's log of enqueueing an organization's run at a
// slot, at a time.
type Enqueue struct {
	Scheduler, Org, Slot string
	At                   time.Time
}

// CheckSchedule finds scheduled slots enqueued more than once across all
// schedulers and counts enqueues per scheduler. The schedulers agree
// through task ids kept in Redis, so a second enqueue after Redis lost its
// data (a restart without persistence, a FLUSHALL: losses) between the two
// enqueues is set apart as explained, with what explains it; any other
// second enqueue is a divergence.
func CheckSchedule(enqueues []Enqueue, losses []time.Time) (perScheduler map[string]int, slots int, explained []string, out []Divergence) {
	perScheduler = map[string]int{}
	perSlot := map[string][]Enqueue{}
	for _, e := range enqueues {
		perScheduler[e.Scheduler]++
		k := e.Org + " " + e.Slot
		perSlot[k] = append(perSlot[k], e)
	}
	for _, k := range slices.Sorted(maps.Keys(perSlot)) {
		es := perSlot[k]
		slices.SortFunc(es, func(a, b Enqueue) int { return a.At.Compare(b.At) })
		for i := 1; i < len(es); i++ {
			prev, e := es[i-1], es[i]
			lost := slices.ContainsFunc(losses, func(t time.Time) bool { return !t.Before(prev.At) && !t.After(e.At) })
			what := fmt.Sprintf("slot %s of %s enqueued again by %s at %s after %s at %s",
				e.Slot, e.Org, e.Scheduler, e.At.Format("15:04:05.000"), prev.Scheduler, prev.At.Format("15:04:05.000"))
			if lost {
				explained = append(explained, what+", Redis having lost its data in between")
				continue
			}
			out = append(out, Divergence{Check: "schedule", Org: e.Org, Subject: "slot " + e.Slot, Detail: what})
		}
	}
	return perScheduler, len(perSlot), explained, out
}
