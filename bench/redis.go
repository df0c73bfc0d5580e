package bench

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisLua is the "redis-lua" target: the counter a shop might pick for a
// flash sale, one key per SKU holding the units left, and a Lua script that
// checks and decrements it atomically, one EVALSHA per reservation. It is as
// durable as the server's appendfsync says, which the report notes: only
// "always" makes an acknowledged decrement survive a crash, as stockd's do.
// go-redis is the client because it is the one the Redis project keeps.
type RedisLua struct {
	addr   string
	prefix string // keys of this run: "stockd-bench:<run>:"
	rdb    *redis.Client
	note   string
	keys   []string
	sha    string
}

// reserveScript grants ARGV[1] units of the key when that many are left.
const reserveScript = `local v = tonumber(redis.call('GET', KEYS[1]))
if v and v >= tonumber(ARGV[1]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 1
end
return 0`

// NewRedisLua returns the target for the Redis server at addr (host:port).
func NewRedisLua(addr string) *RedisLua {
	return &RedisLua{addr: addr, prefix: "stockd-bench:" + randomID() + ":"}
}

func (t *RedisLua) Name() string       { return "redis-lua" }
func (t *RedisLua) OpsPerRequest() int { return 1 }

func (t *RedisLua) key(w Workload, i int) string { return t.prefix + w.SKU(i) }

// Prepare sets every SKU's units, loads the script and reads how durable
// the server's writes are.
func (t *RedisLua) Prepare(ctx context.Context, w Workload) error {
	if t.rdb == nil {
		t.rdb = redis.NewClient(&redis.Options{Addr: t.addr, PoolSize: 1024, MinIdleConns: 0})
		sha, err := t.rdb.ScriptLoad(ctx, reserveScript).Result()
		if err != nil {
			return fmt.Errorf("redis %s: loading the script: %w", t.addr, err)
		}
		t.sha = sha
		t.note = durability(ctx, t.rdb)
	}
	pipe := t.rdb.Pipeline()
	for i := range w.SKUs {
		k := t.key(w, i)
		pipe.Set(ctx, k, w.Stock, 0)
		t.keys = append(t.keys, k)
		if pipe.Len() >= 10_000 {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("redis %s: stocking: %w", t.addr, err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis %s: stocking: %w", t.addr, err)
	}
	return nil
}

// durability says how the server persists writes: Redis acknowledges a
// write before it is on disk unless appendonly is on with appendfsync
// always.
func durability(ctx context.Context, rdb *redis.Client) string {
	aof, err1 := rdb.ConfigGet(ctx, "appendonly").Result()
	fsync, err2 := rdb.ConfigGet(ctx, "appendfsync").Result()
	if err1 != nil || err2 != nil {
		return "redis durability unknown (CONFIG GET refused)"
	}
	if aof["appendonly"] == "yes" && fsync["appendfsync"] == "always" {
		return "redis appendonly yes, appendfsync always: every acknowledged write is fsynced"
	}
	return fmt.Sprintf("redis appendonly %s, appendfsync %s: acknowledged writes are NOT fsynced each, so a crash can lose them (stockd's cannot); not a like-for-like peer",
		aof["appendonly"], fsync["appendfsync"])
}

func (t *RedisLua) Start(ctx context.Context, w Workload, clients int) (*Level, error) {
	l := &Level{Workers: make([]Worker, clients), Note: t.note}
	for i := range l.Workers {
		l.Workers[i] = &redisWorker{t: t, w: w, rnd: newRand()}
	}
	return l, nil
}

// Close deletes the run's keys and closes the connections.
func (t *RedisLua) Close() error {
	if t.rdb == nil {
		return nil
	}
	ctx := context.Background()
	for i := 0; i < len(t.keys); i += 10_000 {
		t.rdb.Del(ctx, t.keys[i:min(i+10_000, len(t.keys))]...)
	}
	return t.rdb.Close()
}

type redisWorker struct {
	t   *RedisLua
	w   Workload
	rnd interface{ IntN(int) int }
}

func (k *redisWorker) Do(ctx context.Context, n int) Outcome {
	var out Outcome
	for range n {
		sku := 0
		if k.w.SKUs > 1 {
			sku = k.rnd.IntN(k.w.SKUs)
		}
		granted, err := k.t.rdb.EvalSha(ctx, k.t.sha, []string{k.t.key(k.w, sku)}, 1).Int()
		switch {
		case err != nil:
			out.Other++
			if out.Err == nil {
				out.Err = err
			}
		case granted == 1:
			out.OK++
		default:
			out.Insufficient++
		}
	}
	return out
}

// redisAddr checks a --redis address.
func redisAddr(addr string) error {
	if addr == "" || !strings.Contains(addr, ":") {
		return fmt.Errorf("--redis: want host:port, got %q", addr)
	}
	return nil
}
