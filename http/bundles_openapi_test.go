package http

import (
	"context"

	"github.com/stockd/stockd"
)

func (oaFakeAPI) DefineBundle(context.Context, stockd.DefineBundle) (stockd.Bundle, error) {
	return oaFilled(stockd.Bundle{}), nil
}

func (oaFakeAPI) Bundle(context.Context, string) (stockd.Bundle, error) {
	return oaFilled(stockd.Bundle{}), nil
}
