// native/binding/stats.cc — the pool and pressure statistics calls (poolStats, poolPressure,
// resetPeaks).
#include "binding/addon.h"

namespace zio::binding {

Napi::Object ZeroIo::Gauge(Napi::Env env, const zio::PoolGauge& g) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("current", static_cast<double>(g.current));
  o.Set("peak", static_cast<double>(g.peak));
  o.Set("capacity", static_cast<double>(g.capacity));
  return o;
}

// reuseportGroup(kind 'tcp'|'udp', ip, port, count, backlog, udpOptions)
//   -> { fds (group order), address: [family, ip, port] }
Napi::Value ZeroIo::PoolStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Shard* sh = Get(info);
  const auto& g = sh->gauges();
  const auto& c = sh->counters();
  Napi::Object o = Napi::Object::New(env);
  o.Set("freeStack", Gauge(env, sh->pool()->free_stack));
  o.Set("fillRing", Gauge(env, g.fill_ring));
  o.Set("rxRing", Gauge(env, g.rx_ring));
  o.Set("txRing", Gauge(env, g.tx_ring));
  o.Set("completionRing", Gauge(env, g.completion_ring));
  o.Set("scratchPool", Gauge(env, g.scratch_pool));
  o.Set("perConn", Gauge(env, g.per_conn));
  Napi::Object k = Napi::Object::New(env);
#define ZIO_COUNTER(name, field) k.Set(name, static_cast<double>(c.field))
  ZIO_COUNTER("rxEnobufs", rx_enobufs);
  ZIO_COUNTER("rxRearm", rx_rearm);
  ZIO_COUNTER("rxBytes", rx_bytes);
  ZIO_COUNTER("txBytes", tx_bytes);
  ZIO_COUNTER("txShortSends", tx_short);
  ZIO_COUNTER("txPartialAccepts", tx_partial_accepts);
  ZIO_COUNTER("staleCompletions", stale_cqes);
  ZIO_COUNTER("eventsDeferred", events_deferred);
  ZIO_COUNTER("connsAccepted", conns_accepted);
  ZIO_COUNTER("connsRejected", conns_rejected);
  ZIO_COUNTER("connsConnected", conns_connected);
  ZIO_COUNTER("connsClosed", conns_closed);
  ZIO_COUNTER("timersFired", timers_fired);
  ZIO_COUNTER("handleCommands", handle_cmds);
  ZIO_COUNTER("handleRejected", handle_rejected);
  ZIO_COUNTER("slotsDetached", slots_detached);
  ZIO_COUNTER("udpRx", udp_rx);
  ZIO_COUNTER("udpRxTruncated", udp_rx_truncated);
  ZIO_COUNTER("udpTx", udp_tx);
  ZIO_COUNTER("udpTxErrors", udp_tx_errors);
  ZIO_COUNTER("udpTxRefused", udp_tx_refused);
  ZIO_COUNTER("udpRxGroTrains", udp_rx_gro_trains);
  ZIO_COUNTER("udpRxGroSegments", udp_rx_gro_segments);
  ZIO_COUNTER("tlsHandshakes", tls_handshakes);
  ZIO_COUNTER("tlsFailed", tls_failed);
  ZIO_COUNTER("tlsTimeouts", tls_timeouts);
  ZIO_COUNTER("tlsRxPaused", tls_rx_paused);
  ZIO_COUNTER("tlsRxPeak", tls_rx_peak);
  ZIO_COUNTER("ktlsActive", ktls_active);
#undef ZIO_COUNTER
  k.Set("poolExhausted", static_cast<double>(sh->pool()->exhausted_count));
  k.Set("handleWakes", static_cast<double>(sh->handle_queue()->wakes.load()));
  k.Set("handleQueueFull", static_cast<double>(sh->handle_queue()->refused_full.load()));
  k.Set("handleReservoir", static_cast<double>(sh->handle_queue()->reservoir_size()));
  if (const zio::EpollDriver* ep = sh->driver().epoll()) {
    k.Set("submits", static_cast<double>(ep->submits));
    k.Set("epollWaits", static_cast<double>(ep->waits));
    k.Set("epollCtl", static_cast<double>(ep->ctl_calls));
    k.Set("epollIoCalls", static_cast<double>(ep->syscalls));
  } else {
    const zio::Ring& ring = sh->driver().ring();
    k.Set("submits", static_cast<double>(ring.submits));
    k.Set("sqFull", static_cast<double>(ring.sq_full));
    k.Set("entersSkipped", static_cast<double>(ring.enters_skipped));
  }
  o.Set("backend", zio::backend_name(sh->backend()));
  o.Set("counters", k);
  o.Set("connections", sh->conns_open());
  return o;
}

Napi::Value ZeroIo::PoolPressure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const zio::PressureInfo& p = Get(info)->pressure();
  Napi::Object o = Napi::Object::New(env);
  o.Set("state", p.state);
  o.Set("utilizationPct", p.pct);
  o.Set("leader", p.leader);
  Napi::Array pools = Napi::Array::New(env, 4);
  for (uint32_t i = 0; i < 4; ++i) pools.Set(i, p.pool_pct[i]);
  o.Set("pools", pools);
  Napi::Array enter = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; ++i) enter.Set(i, p.enter[i + 1]);
  o.Set("enter", enter);
  o.Set("budgetRx", p.budget_rx);
  o.Set("budgetTxCritical", p.budget_tx_critical);
  o.Set("budgetTxBulk", p.budget_tx_bulk);
  o.Set("budgetScratch", p.budget_scratch);
  o.Set("transitions", static_cast<double>(p.transitions));
  o.Set("writesCapped", static_cast<double>(p.writes_capped));
  o.Set("acceptsRefused", static_cast<double>(p.accepts_refused));
  return o;
}

Napi::Value ZeroIo::ResetPeaks(const Napi::CallbackInfo& info) {
  Get(info)->reset_peaks();
  return info.Env().Undefined();
}


}  // namespace zio::binding
