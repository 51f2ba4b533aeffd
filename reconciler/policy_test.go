package reconciler_test

import (
	"testing"
	"time"

	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/reconciler"
)

func TestPolicyFromConfigTakesStaleAfterAndGuard(t *testing.T) {
	cfg, err := config.FromEnv(func(k string) string {
		return map[string]string{"SCIMSYNC_RECONCILE_STALE_AFTER": "40s", "SCIMSYNC_DEPROVISION_GUARD": "20%"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	p := reconciler.PolicyFromConfig(cfg)
	if p.StaleAfter != 40*time.Second || p.Guard != 0.2 {
		t.Errorf("policy = %+v, want StaleAfter 40s and Guard 0.2", p)
	}
}
