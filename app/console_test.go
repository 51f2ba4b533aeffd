package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/store/storetest"
)

// screenshotDir is where the journeys leave their screenshots.
var screenshotDir = filepath.Join("..", ".ci", "artifacts", "console")

// browser starts headless Chromium, or skips the test where none is
// installed; SCIMSYNC_REQUIRE_BROWSER=1 (CI) makes that a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	found := false
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if _, err := exec.LookPath(name); err == nil {
			found = true
			break
		}
	}
	if !found {
		if os.Getenv("SCIMSYNC_REQUIRE_BROWSER") == "1" {
			t.Fatal("no chromium on PATH, and SCIMSYNC_REQUIRE_BROWSER=1")
		}
		t.Skip("no chromium on PATH: apt-get install -y chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// page drives one browser tab through the console.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	var err error
	// A node found just before a redirect's page replaced the document is
	// gone by the time it is used: find it again.
	for range 3 {
		if err = chromedp.Do(ctx, steps...); err == nil || !strings.Contains(err.Error(), "Could not find node") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *page) open(path string) { p.t.Helper(); p.do("open "+path, chromedp.Navigate(p.base+path)) }

// eval runs a JavaScript expression, retrying while a page loads.
func (p *page) eval(js string) (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string]("String("+js+")"))
}

// waitFor polls until the JavaScript condition holds on the current page.
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		v, err := p.eval("(function(){try{return !!(" + cond + ")}catch(e){return false}})()")
		if err == nil && v == "true" {
			return
		}
		last = fmt.Sprint(v, err)
	}
	body, _ := p.eval("document.body && document.body.innerText")
	p.t.Fatalf("timed out waiting for %s (%s); page: %s", what, last, body)
}

// text is an element's text ("" when absent).
func (p *page) text(sel string) string {
	p.t.Helper()
	v, _ := p.eval(fmt.Sprintf("(document.querySelector(%q)||{}).innerText||''", sel))
	return v
}

func (p *page) hasText(sel, want string) string {
	return fmt.Sprintf("(document.querySelector(%q)||{innerText:''}).innerText.includes(%q)", sel, want)
}

func (p *page) path() string {
	v, _ := p.eval("location.pathname")
	return v
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	// A full-page capture needs no node id, so a document that is replaced
	// while it is taken (a redirect landing) cannot fail it.
	p.waitFor("the page to load", `document.readyState === "complete"`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// fill types into a form field, replacing what it held.
func (p *page) fill(sel, value string) {
	p.t.Helper()
	p.do("find "+sel, chromedp.WaitVisible(sel))
	if _, err := p.eval(fmt.Sprintf("document.querySelector(%q).value = ''", sel)); err != nil {
		p.t.Fatalf("clear %s: %v", sel, err)
	}
	p.do("fill "+sel, chromedp.SendKeys(sel, value))
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.WaitVisible(sel), chromedp.Click(sel))
}

// TestConsoleJourneys walks an operator through the console in a real
// browser, against a fresh server with a worker and an Okta fake.
func TestConsoleJourneys(t *testing.T) {
	bctx := browser(t)
	s := newTestServer(t, lastBackend(), brokertest.Open(t))
	startWorker(t, s.app)
	okta := oktafake.New(t)
	var oktaIDs []string
	for i := range 6 {
		u := okta.AddUser(oktafake.User{Email: fmt.Sprintf("person%d@example.com", i), FirstName: "Person", LastName: fmt.Sprint(i)})
		oktaIDs = append(oktaIDs, u.ID)
	}
	p := &page{t: t, ctx: bctx, base: s.URL}

	// 1: sign in.
	p.open("/console/")
	p.waitFor("the sign-in page", `location.pathname == "/console/signin"`)
	p.fill("#token", adminToken)
	p.click("#signin")
	p.waitFor("the organizations page", `document.querySelector("#create-org") && document.querySelector(".empty")`)
	p.screenshot("01-signed-in")

	// 2: create an organization.
	p.fill("#name", "Acme")
	p.click("#create-org")
	p.waitFor("the new organization", p.hasText("#notice", "Organization created"))
	orgPath := p.path()
	if !strings.HasPrefix(orgPath, "/console/orgs/") {
		t.Fatalf("after create: at %s", orgPath)
	}
	if got := p.text(".empty"); !strings.Contains(got, "No connector yet") {
		t.Errorf("empty connector state = %q", got)
	}
	p.screenshot("02-org-created")

	// 3: SCIM on, and a token shown once.
	p.click("#scim-toggle")
	p.waitFor("SCIM on", p.hasText("#notice", "SCIM is on"))
	p.fill("#description", "Okta provisioning")
	p.click("#create-token")
	p.waitFor("the new token", `document.querySelector("#token-value")`)
	token, _ := p.eval(`document.querySelector("#token-value").value`)
	scimURL, _ := p.eval(`document.querySelector("#token-url").value`)
	if !strings.HasPrefix(token, secret.PrefixSCIM) || scimURL != s.URL+"/scim/v2" {
		t.Fatalf("token %q at %q", token, scimURL)
	}
	// The form's answer redirected to the page: the address carries
	// nothing, and a reload resends no form.
	if loc, _ := p.eval("location.pathname + location.search"); loc != orgPath {
		t.Errorf("after creating the token: at %s, want %s", loc, orgPath)
	}
	p.screenshot("03-token-created")
	p.do("reload", chromedp.Reload())
	p.waitFor("the tokens table", `document.querySelector("#tokens") && !document.querySelector("#token-value")`)
	if html, _ := p.eval("document.documentElement.outerHTML"); strings.Contains(html, token) {
		t.Fatal("the token is shown again after a reload")
	}
	if n, _ := p.eval(`document.querySelectorAll("#tokens tbody tr").length`); n != "1" {
		t.Errorf("%s tokens after a reload, want 1", n)
	}

	// 4: the IdP pushes a user with the token; the member waits for setup.
	code, user, _ := s.do(t, call{method: "POST", path: "/scim/v2/Users", auth: token, body: `{
		"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann@example.com",
		"name":{"givenName":"Ann","familyName":"Lee"},"emails":[{"value":"ann@example.com","primary":true}],"active":true}`})
	if code != 201 {
		t.Fatalf("SCIM create = %d %v", code, user)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		p.open(orgPath + "/members?status=pending_setup&q=ANN@")
		if strings.Contains(p.text("#members"), "ann@example.com") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pending member: %s", p.text("main"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if row := p.text("#members"); !strings.Contains(row, "pending_setup") || !strings.Contains(row, "scim") {
		t.Errorf("member row = %q", row)
	}
	p.screenshot("04-member-pending")

	// 5: an Okta connector, refused with a wrong token, then saved.
	p.open(orgPath + "/connector")
	p.waitFor("the connector page", p.hasText(".empty", "No connector yet: choose your IdP"))
	p.do("choose okta", chromedp.SetValue("#type-choice", "okta"), chromedp.Click("#choose-type"))
	p.waitFor("the Okta form", `document.querySelector('[name="settings.orgUrl"]')`)
	p.fill(`[name="settings.orgUrl"]`, okta.URL())
	p.fill(`[name="credentials.apiToken"]`, "00wrong-token-that-okta-refuses")
	p.click("#save-connector")
	p.waitFor("the IdP's refusal", p.hasText("#connector-error", "The IdP refused"))
	if html, _ := p.eval("document.documentElement.outerHTML"); strings.Contains(html, "00wrong-token-that-okta-refuses") {
		t.Error("the refused credential is echoed in the page")
	}
	p.screenshot("05a-connector-refused")
	p.fill(`[name="credentials.apiToken"]`, oktafake.DefaultToken)
	p.click("#test-connection")
	p.waitFor("a working connection", p.hasText("#test-ok", "Connection works"))
	p.fill(`[name="credentials.apiToken"]`, oktafake.DefaultToken)
	p.click("#save-connector")
	p.waitFor("the saved connector", p.hasText("#notice", "Connector saved"))
	p.open(orgPath + "/connector")
	p.waitFor("credentials shown as set", `document.querySelector('[name="credentials.apiToken"]').placeholder.startsWith("set")`)
	p.screenshot("05b-connector-saved")

	// 6: a dry run and its plan.
	runTo := func(button, want string) {
		t.Helper()
		p.open(orgPath + "/runs")
		p.click(button)
		p.waitFor("the run page", `document.querySelector("#run-status")`)
		p.waitFor("the run to finish", fmt.Sprintf(`["succeeded","failed","blocked"].includes(document.querySelector("#run-status").innerText)`))
		if got := p.text("#run-status"); got != want {
			t.Fatalf("run = %s, want %s: %s", got, want, p.text("main"))
		}
	}
	runTo("#dry-run", "succeeded")
	if got := p.text("#plan-counts"); !strings.Contains(got, "6 provision") {
		t.Errorf("dry-run plan = %q", got)
	}
	p.click(`a[href="?action=provision"]`)
	p.waitFor("the provision items", `location.search == "?action=provision" && document.querySelectorAll("#items tbody tr").length == 6`)
	p.screenshot("06-dry-run-plan")
	runTo("#run-now", "succeeded")

	// 7: the IdP empties; the run is blocked.
	for _, id := range oktaIDs {
		okta.DeleteUser(id)
	}
	runTo("#run-now", "blocked")
	// The verdict shows the share the plan takes and, apart, the limit.
	if got := p.text("#guard"); !strings.Contains(got, "Blocked") || !strings.Contains(got, "6 of 7 members (86%) would lose access") || !strings.Contains(got, "the guard allows 10%") {
		t.Errorf("guard = %q", got)
	}
	p.screenshot("07-run-blocked")
	p.do("phone size", chromedp.EmulateViewport(390, 844))
	// Every tab of the organization is on screen: they wrap, none is cut
	// or scrolled away.
	if out, _ := p.eval(`[...document.querySelectorAll("nav.tabs a")].filter(a => { const r = a.getBoundingClientRect(); return r.left < 0 || r.right > document.documentElement.clientWidth }).map(a => a.innerText).join(", ") || (document.querySelector("nav.tabs").scrollWidth > document.querySelector("nav.tabs").clientWidth ? "the bar scrolls" : "")`); out != "" {
		t.Errorf("at phone width, tabs off screen: %s", out)
	}
	if n, _ := p.eval(`document.querySelectorAll("nav.tabs a").length`); n != "8" {
		t.Errorf("%s tabs, want 8", n)
	}
	p.screenshot("07b-run-blocked-phone")
	p.do("laptop size", chromedp.EmulateViewport(1280, 900))

	// 8: review and confirm; the button needs the count first.
	blocked := p.path()
	p.click("#review")
	p.waitFor("the review page", `document.querySelector("#loss")`)
	if got := p.text("#loss"); !strings.Contains(got, "members will lose access") {
		t.Errorf("review = %q", got)
	}
	p.click("#confirm-run") // the form needs the count: nothing happens
	time.Sleep(300 * time.Millisecond)
	if got := p.path(); got != blocked+"/confirm" {
		t.Fatalf("confirm without the count went to %s", got)
	}
	removals := strings.Fields(p.text("#loss"))[0]
	p.screenshot("08a-review")
	p.fill("#count", removals)
	p.click("#confirm-run")
	p.waitFor("the confirmed run", `location.pathname != "`+blocked+`/confirm" && document.querySelector("#run-status")`)
	p.waitFor("the confirmed run to finish", `["succeeded","failed","blocked"].includes(document.querySelector("#run-status").innerText)`)
	if got := p.text("#run-status"); got != "succeeded" {
		t.Fatalf("confirmed run = %s: %s", got, p.text("main"))
	}
	if got := p.text("#guard"); !strings.Contains(got, "confirmed") {
		t.Errorf("guard = %q", got)
	}
	p.screenshot("08b-confirmed")

	// 9: revoke the token.
	p.open(orgPath)
	p.click("#tokens a.danger-link")
	p.click("#confirm-revoke")
	p.waitFor("the revocation", p.hasText("#notice", "Token revoked"))
	if code, _, _ := s.do(t, call{method: "GET", path: "/scim/v2/Users", auth: token}); code != 401 {
		t.Errorf("SCIM with the revoked token = %d", code)
	}
	p.open(orgPath + "/audit")
	p.waitFor("the audit log", p.hasText("#audit", "scim_token.revoke"))
	p.screenshot("09-token-revoked")

	// 10: sign out; the console asks to sign in again.
	p.click("#signout")
	p.waitFor("the sign-in page", `location.pathname == "/console/signin"`)
	p.open(orgPath)
	p.waitFor("a redirect to sign-in", `location.pathname == "/console/signin"`)
	p.screenshot("10-signed-out")
}

// TestConsoleKeyboardOnly signs in, creates an organization, turns SCIM on,
// creates and revokes a token and signs out with the keyboard alone.
func TestConsoleKeyboardOnly(t *testing.T) {
	bctx := browser(t)
	s := newTestServer(t, lastBackend(), brokertest.Open(t))
	p := &page{t: t, ctx: bctx, base: s.URL}

	// tabTo presses Tab until sel has the focus: it proves sel is reachable.
	tabTo := func(sel string) {
		t.Helper()
		for range 60 {
			if v, _ := p.eval(fmt.Sprintf("document.activeElement && document.activeElement.matches(%q)", sel)); v == "true" {
				return
			}
			p.do("tab", chromedp.KeyEvent(kb.Tab))
		}
		t.Fatalf("Tab never reached %s", sel)
	}
	typeKeys := func(keys string) { t.Helper(); p.do("type", chromedp.KeyEvent(keys)) }
	enter := func() { t.Helper(); p.do("enter", chromedp.KeyEvent(kb.Enter)) }

	p.open("/console/")
	p.waitFor("the sign-in page", `document.querySelector("#token")`)
	tabTo("#token")
	typeKeys(adminToken)
	enter()
	p.waitFor("the organizations page", `document.querySelector("#create-org")`)

	tabTo("#name")
	typeKeys("Keyboard Inc")
	enter()
	p.waitFor("the organization", p.hasText("#notice", "Organization created"))

	tabTo("#scim-toggle")
	enter()
	p.waitFor("SCIM on", p.hasText("#notice", "SCIM is on"))

	tabTo("#description")
	typeKeys("keyboard")
	tabTo("#create-token")
	enter()
	p.waitFor("the token", `document.querySelector("#token-value")`)

	tabTo("#tokens a.danger-link")
	enter()
	p.waitFor("the revoke page", `document.querySelector("#confirm-revoke")`)
	tabTo("#confirm-revoke")
	enter()
	p.waitFor("the revocation", p.hasText("#notice", "Token revoked"))

	tabTo("#signout")
	enter()
	p.waitFor("the sign-in page", `location.pathname == "/console/signin"`)
	p.screenshot("keyboard-signed-out")
}

// lastBackend is Postgres when TEST_DATABASE_URL names one, so the browser
// journeys, which run once, run on the production backend where it is set.
func lastBackend() storetest.Backend {
	b := storetest.Backends()
	return b[len(b)-1]
}
