#include "controllers/controller_metrics.h"

#include <cstring>

namespace kubefold::controllers {

void ReconcileMetrics::Observe(const char* result, double seconds) const {
  if (time_ == nullptr) return;
  time_->Observe(seconds);
  if (std::strcmp(result, "error") == 0) {
    error_->Inc();
    errors_->Inc();
  } else if (std::strcmp(result, "requeue_after") == 0) {
    requeue_after_->Inc();
  } else {
    success_->Inc();
  }
}

Result<std::unique_ptr<ControllerMetrics>> ControllerMetrics::Register(metrics::Registry& r) {
  std::unique_ptr<ControllerMetrics> m(new ControllerMetrics());
  // controller-runtime's reconcile-time buckets.
  const std::vector<double> reconcile_buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35,
                                                 0.4,   0.45, 0.5,   0.6,  0.7, 0.8,  0.9, 1.0,  1.25, 1.5,
                                                 1.75,  2.0,  2.5,   3.0,  3.5, 4.0,  4.5, 5,    6,    7,
                                                 8,     9,    10,    15,   20,  25,   30,  40,   50,   60};
  // client-go's workqueue buckets: 10 ns to 1000 s.
  const std::vector<double> queue_buckets = metrics::ExponentialBuckets(10e-9, 10, 12);
#define KUBEFOLD_TRY(lhs, expr)      \
  {                                  \
    auto r_ = (expr);                \
    if (!r_.ok()) return r_.status(); \
    lhs = *r_;                       \
  }
  KUBEFOLD_TRY(m->reconcile_total_, r.AddCounterFamily("controller_runtime_reconcile_total",
                                                       "Total number of reconciliations per controller",
                                                       {"controller", "result"}));
  KUBEFOLD_TRY(m->reconcile_errors_, r.AddCounterFamily("controller_runtime_reconcile_errors_total",
                                                        "Total number of reconciliation errors per controller",
                                                        {"controller"}));
  KUBEFOLD_TRY(m->reconcile_time_, r.AddHistogramFamily("controller_runtime_reconcile_time_seconds",
                                                        "Length of time per reconciliation per controller",
                                                        reconcile_buckets, {"controller"}));
  KUBEFOLD_TRY(m->depth_, r.AddGaugeFamily("workqueue_depth", "Current depth of workqueue", {"controller", "name"}));
  KUBEFOLD_TRY(m->adds_, r.AddCounterFamily("workqueue_adds_total", "Total number of adds handled by workqueue",
                                            {"controller", "name"}));
  KUBEFOLD_TRY(m->retries_, r.AddCounterFamily("workqueue_retries_total", "Total number of retries handled by workqueue",
                                               {"controller", "name"}));
  KUBEFOLD_TRY(m->queue_duration_,
               r.AddHistogramFamily("workqueue_queue_duration_seconds",
                                    "How long in seconds an item stays in workqueue before being requested",
                                    queue_buckets, {"controller", "name"}));
  KUBEFOLD_TRY(m->work_duration_,
               r.AddHistogramFamily("workqueue_work_duration_seconds",
                                    "How long in seconds processing an item from workqueue takes", queue_buckets,
                                    {"controller", "name"}));
#undef KUBEFOLD_TRY
  return m;
}

WorkQueueMetrics ControllerMetrics::Queue(const std::string& controller) const {
  WorkQueueMetrics q;
  q.depth = *depth_->WithLabels({controller, controller});
  q.adds = *adds_->WithLabels({controller, controller});
  q.retries = *retries_->WithLabels({controller, controller});
  q.queue_duration = *queue_duration_->WithLabels({controller, controller});
  q.work_duration = *work_duration_->WithLabels({controller, controller});
  return q;
}

ReconcileMetrics ControllerMetrics::Reconcile(const std::string& controller) const {
  ReconcileMetrics m;
  m.success_ = *reconcile_total_->WithLabels({controller, "success"});
  m.error_ = *reconcile_total_->WithLabels({controller, "error"});
  m.requeue_after_ = *reconcile_total_->WithLabels({controller, "requeue_after"});
  m.errors_ = *reconcile_errors_->WithLabels({controller});
  m.time_ = *reconcile_time_->WithLabels({controller});
  return m;
}

}  // namespace kubefold::controllers
