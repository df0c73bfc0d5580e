package stockd

import "encoding/json"

// DecodeEventJSON decodes the data of an event of type t, as the API shows it
// in JSON, back into its stockd type (such as StockReceived). It reports
// false for a type it cannot decode: an unknown one, saga bookkeeping whose
// JSON does not round-trip, or data that does not match the type.
func DecodeEventJSON(t EventType, data []byte) (EventData, bool) {
	switch t {
	case TypeStockReceived:
		return decodeAs[StockReceived](data)
	case TypeStockAdjusted:
		return decodeAs[StockAdjusted](data)
	case TypeStockCounted:
		return decodeAs[StockCounted](data)
	case TypeStockTransferred:
		return decodeAs[StockTransferred](data)
	case TypeTransferArrived:
		return decodeAs[TransferArrived](data)
	case TypeSKUConfigured:
		return decodeAs[SKUConfigured](data)
	case TypeLocationConfigured:
		return decodeAs[LocationConfigured](data)
	case TypeStockReserved:
		return decodeAs[StockReserved](data)
	case TypeReservationExtended:
		return decodeAs[ReservationExtended](data)
	case TypeReservationCommitted:
		return decodeAs[ReservationCommitted](data)
	case TypeReservationReleased:
		return decodeAs[ReservationReleased](data)
	case TypeReservationChanged:
		return decodeAs[ReservationChanged](data)
	case TypeLotExpired:
		return decodeAs[LotExpired](data)
	case TypeShortageDetected:
		return decodeAs[ShortageDetected](data)
	case TypeReservationHeld:
		return decodeAs[ReservationHeld](data)
	case TypeSagaSettled:
		return decodeAs[SagaSettled](data)
	case TypeEntitiesRetired:
		return decodeAs[EntitiesRetired](data)
	case TypeLowStock:
		return decodeAs[LowStock](data)
	case TypeOutOfStock:
		return decodeAs[OutOfStock](data)
	case TypeBackInStock:
		return decodeAs[BackInStock](data)
	case TypeBundleDefined:
		return decodeAs[BundleDefined](data)
	case TypeBundlesReserved:
		return decodeAs[BundlesReserved](data)
	case TypeBundlesCommitted:
		return decodeAs[BundlesCommitted](data)
	}
	return nil, false
}

func decodeAs[T EventData](data []byte) (EventData, bool) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, false
	}
	return v, true
}
