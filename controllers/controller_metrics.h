// ControllerMetrics: the metric families controller-runtime and client-go
// expose for every controller, with the same names, labels and meanings,
// so dashboards built for Kubernetes operators work with kubefold:
//
//   controller_runtime_reconcile_total{controller,result}   result: success,
//                                                            error, requeue_after
//   controller_runtime_reconcile_errors_total{controller}
//   controller_runtime_reconcile_time_seconds{controller}   histogram
//   workqueue_depth{controller,name}                        gauge
//   workqueue_adds_total{controller,name}
//   workqueue_retries_total{controller,name}
//   workqueue_queue_duration_seconds{controller,name}       histogram
//   workqueue_work_duration_seconds{controller,name}        histogram
//
// Thread-safety: For* may be called from any thread; what they return is
// lock-free to update.
#pragma once

#include <memory>
#include <string>

#include "controllers/metrics.h"
#include "controllers/work_queue.h"

namespace kubefold::controllers {

// One controller's reconcile metrics.
class ReconcileMetrics {
 public:
  ReconcileMetrics() = default;  // records nothing
  // result: "success", "error" or "requeue_after".
  void Observe(const char* result, double seconds) const;

 private:
  friend class ControllerMetrics;
  metrics::Counter* success_ = nullptr;
  metrics::Counter* error_ = nullptr;
  metrics::Counter* requeue_after_ = nullptr;
  metrics::Counter* errors_ = nullptr;
  metrics::Histogram* time_ = nullptr;
};

class ControllerMetrics {
 public:
  // Registers the families in `registry` (which must outlive this).
  // kAlreadyExists when they are registered there already.
  static Result<std::unique_ptr<ControllerMetrics>> Register(metrics::Registry& registry);

  WorkQueueMetrics Queue(const std::string& controller) const;
  ReconcileMetrics Reconcile(const std::string& controller) const;

 private:
  ControllerMetrics() = default;
  metrics::CounterFamily* reconcile_total_ = nullptr;
  metrics::CounterFamily* reconcile_errors_ = nullptr;
  metrics::HistogramFamily* reconcile_time_ = nullptr;
  metrics::GaugeFamily* depth_ = nullptr;
  metrics::CounterFamily* adds_ = nullptr;
  metrics::CounterFamily* retries_ = nullptr;
  metrics::HistogramFamily* queue_duration_ = nullptr;
  metrics::HistogramFamily* work_duration_ = nullptr;
};

}  // namespace kubefold::controllers
