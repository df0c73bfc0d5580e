package app

import (
	"fmt"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/auth"
	"github.com/stockd/stockd/http"
)

// Keys returns the API's authentication over a keyring: a token is looked
// up by its hash, then charged one request against its key's rate limit.
func Keys(r *auth.Keyring) http.Keys { return keyring{r} }

// LoadKeys reads a keys file (DESIGN §7 "Access control") into the API's
// authentication.
func LoadKeys(path string) (http.Keys, error) {
	keys, err := auth.LoadKeys(path)
	if err != nil {
		return nil, err
	}
	r, err := auth.NewKeyring(keys)
	if err != nil {
		return nil, err
	}
	return Keys(r), nil
}

type keyring struct{ r *auth.Keyring }

func (k keyring) Authenticate(token string) (http.Key, error) {
	key, err := k.r.Authenticate(token)
	if err != nil {
		return http.Key{}, err
	}
	if ok, wait := k.r.Allow(key); !ok {
		return http.Key{}, &stockd.Error{
			Code:       stockd.CodeRateLimited,
			Message:    fmt.Sprintf("key %q is over its rate limit of %g requests per second", key.Name, key.Rate),
			RetryAfter: wait,
		}
	}
	return http.Key{Name: key.Name, Scopes: key.Scopes}, nil
}
