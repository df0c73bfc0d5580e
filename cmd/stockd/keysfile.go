package main

import (
	"errors"

	"github.com/stockd/stockd/http"
)

// loadKeys reads the keys file of --keys.
func loadKeys(path string) (http.Keys, error) {
	return nil, errors.New("--keys: not wired yet")
}
