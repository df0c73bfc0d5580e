// events.js: one line of text for an event of the log, for the history and
// the live feed.

const at = (loc) => (loc ? ` at ${loc}` : '');

/** describe returns a short human reading of an event's data. */
export function describe(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case 'StockReceived':
      return `+${d.quantity}${at(d.location)}${d.lot ? `, lot ${d.lot}` : ''}${d.best_before ? `, best before ${d.best_before}` : ''}`;
    case 'StockAdjusted':
      return `${d.delta > 0 ? '+' : ''}${d.delta}${at(d.location)} (${d.reason})`;
    case 'StockCounted':
      return `counted ${d.on_hand}${at(d.location)} (${d.delta > 0 ? '+' : ''}${d.delta})`;
    case 'StockTransferred':
      return `${d.quantity} sent ${d.from} \u2192 ${d.to}`;
    case 'TransferArrived':
      return `${d.quantity} arrived at ${d.to} from ${d.from}`;
    case 'StockReserved':
      return `${d.quantity} held for ${d.reservation}${d.customer ? ` (customer ${d.customer})` : ''}`;
    case 'ReservationCommitted':
      return `${d.quantity} committed (${d.reservation})${d.released ? `, ${d.released} released` : ''}`;
    case 'ReservationReleased':
      return `${d.quantity} released (${d.reservation}, ${d.reason})`;
    case 'ReservationExtended':
      return `${d.reservation} extended`;
    case 'LotExpired':
      return `${d.quantity} of lot ${d.lot || '(undated)'} expired${at(d.location)}`;
    case 'ShortageDetected':
      return `shortage of ${d.shortage}${at(d.location)}`;
    case 'LowStock':
    case 'OutOfStock':
    case 'BackInStock':
      return `available ${d.available}`;
    case 'SKUConfigured':
      return `safety stock ${d.safety_stock}, low-stock threshold ${d.low_stock_threshold}${d.sales_cap ? `, sales cap ${d.sales_cap}` : ''}`;
    case 'LocationConfigured':
      return d.location ? `location ${d.location.id} (${d.location.kind})` : '';
    default: {
      const s = JSON.stringify(d);
      return s.length > 120 ? s.slice(0, 117) + '\u2026' : s;
    }
  }
}
