#include "controllers/kube/transport.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <utility>

namespace kubefold::kube {

std::string_view FindHeader(const Headers& headers, std::string_view name) {
  auto same = [&](std::string_view a) {
    return a.size() == name.size() && std::equal(a.begin(), a.end(), name.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& [k, v] : headers) {
    if (same(k)) return v;
  }
  return {};
}

namespace {

class ObservedTransport : public Transport {
 public:
  ObservedTransport(std::unique_ptr<Transport> inner, TransportObserver observer)
      : inner_(std::move(inner)), observer_(std::move(observer)) {}
  Result<HttpResponse> Send(const HttpRequest& request) override {
    const auto start = std::chrono::steady_clock::now();
    auto r = inner_->Send(request);
    observer_(request.method, r.ok() ? r->status : 0, std::chrono::steady_clock::now() - start);
    return r;
  }
  Result<HttpStream> Open(const HttpRequest& request) override {
    const auto start = std::chrono::steady_clock::now();
    auto r = inner_->Open(request);
    observer_(request.method, r.ok() ? r->status : 0, std::chrono::steady_clock::now() - start);
    return r;
  }

 private:
  std::unique_ptr<Transport> inner_;
  TransportObserver observer_;
};

}  // namespace

std::unique_ptr<Transport> ObserveTransport(std::unique_ptr<Transport> inner, TransportObserver observer) {
  if (!observer) return inner;
  return std::make_unique<ObservedTransport>(std::move(inner), std::move(observer));
}

}  // namespace kubefold::kube
