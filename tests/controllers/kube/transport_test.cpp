// The cpprestsdk Transport (http_transport.h) against a real local server
// (tls_test_server.h): TLS verification and its failures, mutual TLS, plain
// HTTP, responses of every status, deadlines, and streamed bodies delivered
// as they arrive.
#define BOOST_TEST_MODULE transport_test
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controllers/kube/http_transport.h"
#include "tests/controllers/kube/test_util.h"
#include "tests/controllers/kube/tls_test_server.h"

namespace kubefold::kube {
namespace {

using namespace std::chrono_literals;
using testing::Describe;
using testing::HeaderList;
using testing::Notification;
using testing::ReceivedRequest;
using testing::ServerConnection;
using testing::ServerOptions;
using testing::TestPki;
using testing::TestServer;

using Clock = std::chrono::steady_clock;

const TestPki& Pki() { return TestPki::Get(); }

ServerOptions Tls(const testing::KeyPair& server, std::string client_ca = "") {
  ServerOptions o;
  o.tls = true;
  o.server = server;
  o.client_ca_pem = std::move(client_ca);
  return o;
}

ServerOptions Plain() {
  ServerOptions o;
  o.tls = false;
  return o;
}

// Answers every request with 200 and body "ok".
void Ok(const ReceivedRequest&, ServerConnection& c) {
  c.Respond(200, {{"Content-Type", "text/plain"}, {"X-Served-By", "test"}}, "ok");
}

RestConfig ConfigFor(const TestServer& server, std::string ca_pem = Pki().ca_pem) {
  RestConfig config;
  config.server = server.Url();
  config.ca_pem = std::move(ca_pem);
  return config;
}

std::unique_ptr<Transport> MustTransport(const RestConfig& config, TransportOptions options = {}) {
  auto t = NewHttpTransport(config, std::move(options));
  BOOST_TEST_REQUIRE(t.ok(), Describe(t.status()));
  return std::move(t).value();
}

// Deadlines in tests that are not about deadlines are generous: they only
// bound a broken run (sanitizer builds on a loaded machine are slow).
HttpRequest Get(std::string path, std::chrono::milliseconds timeout = 10s) {
  HttpRequest r;
  r.method = "GET";
  r.path_and_query = std::move(path);
  r.timeout = timeout;
  return r;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(get_over_https_with_the_ca_from_pem_succeeds_and_sends_the_request_as_given) {
  TestServer server(Tls(Pki().server_ip), Ok);
  auto transport = MustTransport(ConfigFor(server));
  HttpRequest request = Get("/api/v1/namespaces?limit=1");
  request.headers = {{"Accept", "application/json"}, {"Authorization", "Bearer abc"}};
  auto response = transport->Send(request);
  BOOST_TEST_REQUIRE(response.ok(), Describe(response.status()));
  BOOST_TEST(response->status == 200);
  BOOST_TEST(response->body == "ok");
  BOOST_TEST(FindHeader(response->headers, "x-served-by") == "test");
  auto received = server.Received();
  BOOST_TEST_REQUIRE(received.size() == 1u);
  BOOST_TEST(received[0].method == "GET");
  BOOST_TEST(received[0].target == "/api/v1/namespaces?limit=1");
  BOOST_TEST(received[0].Header("Authorization") == "Bearer abc");
  BOOST_TEST(received[0].Header("Accept") == "application/json");
  BOOST_TEST(received[0].Header("Accept-Encoding") == "");  // no compression asked
  BOOST_TEST(received[0].sni == "");                         // no SNI for an IP address
}

BOOST_AUTO_TEST_CASE(a_server_signed_by_another_ca_is_refused) {
  TestServer server(Tls(Pki().server_ip), Ok);
  auto transport = MustTransport(ConfigFor(server, Pki().other_ca_pem));
  auto response = transport->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(static_cast<int>(response.status().code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(response.status().message(), "TLS verification failed"), response.status().message());
  BOOST_TEST(Contains(response.status().message(), "issuer"), response.status().message());
  BOOST_TEST(server.Received().empty());
}

BOOST_AUTO_TEST_CASE(the_system_trust_store_does_not_trust_the_test_ca) {
  TestServer server(Tls(Pki().server_ip), Ok);
  auto transport = MustTransport(ConfigFor(server, ""));
  auto response = transport->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(Contains(response.status().message(), "TLS verification failed"), response.status().message());
}

BOOST_AUTO_TEST_CASE(a_certificate_for_another_name_is_refused) {
  // Valid chain, wrong name: DNS:wrong.example.com reached at 127.0.0.1.
  TestServer wrong(Tls(Pki().server_wrong), Ok);
  auto response = MustTransport(ConfigFor(wrong))->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(static_cast<int>(response.status().code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(response.status().message(), "IP address mismatch"), response.status().message());

  // The kubernetes.default.svc certificate reached at 127.0.0.1 without
  // tls_server_name: refused too.
  TestServer dns(Tls(Pki().server_dns), Ok);
  response = MustTransport(ConfigFor(dns))->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(Contains(response.status().message(), "IP address mismatch"), response.status().message());

  // A subject CN of 127.0.0.1 without SANs does not count (as in Go).
  TestServer cn_only(Tls(Pki().server_cn_only), Ok);
  response = MustTransport(ConfigFor(cn_only))->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(Contains(response.status().message(), "TLS verification failed"), response.status().message());
  BOOST_TEST(wrong.Received().empty());
  BOOST_TEST(dns.Received().empty());
  BOOST_TEST(cn_only.Received().empty());
}

BOOST_AUTO_TEST_CASE(tls_server_name_is_verified_and_sent_as_sni) {
  TestServer server(Tls(Pki().server_dns), Ok);
  RestConfig config = ConfigFor(server);
  config.tls_server_name = "kubernetes.default.svc";
  auto response = MustTransport(config)->Send(Get("/version"));
  BOOST_TEST_REQUIRE(response.ok(), Describe(response.status()));
  BOOST_TEST(response->status == 200);
  auto received = server.Received();
  BOOST_TEST_REQUIRE(received.size() == 1u);
  BOOST_TEST(received[0].sni == "kubernetes.default.svc");
  BOOST_TEST(received[0].Header("Host") == "127.0.0.1:" + std::to_string(server.port()));

  // A tls_server_name the certificate does not carry is refused.
  config.tls_server_name = "other.default.svc";
  response = MustTransport(config)->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(Contains(response.status().message(), "hostname mismatch"), response.status().message());
}

BOOST_AUTO_TEST_CASE(insecure_skip_tls_verify_accepts_any_certificate_and_warns_once) {
  TestServer server(Tls(Pki().server_wrong), Ok);
  RestConfig config;
  config.server = server.Url();
  config.insecure_skip_tls_verify = true;
  std::vector<std::string> warnings;
  TransportOptions options;
  options.warn = [&](std::string_view w) { warnings.emplace_back(w); };
  auto transport = MustTransport(config, options);
  for (int i = 0; i < 2; ++i) {
    auto response = transport->Send(Get("/version"));
    BOOST_TEST_REQUIRE(response.ok(), Describe(response.status()));
    BOOST_TEST(response->status == 200);
  }
  BOOST_TEST_REQUIRE(warnings.size() == 1u);
  BOOST_TEST(Contains(warnings[0], "TLS verification is disabled for " + server.Url()), warnings[0]);
}

BOOST_AUTO_TEST_CASE(mutual_tls_presents_the_client_certificate_and_fails_without_one) {
  TestServer server(Tls(Pki().server_ip, Pki().ca_pem), Ok);
  RestConfig config = ConfigFor(server);
  config.client_certificate_pem = Pki().client.cert_pem;
  config.client_key_pem = Pki().client.key_pem;
  auto response = MustTransport(config)->Send(Get("/version"));
  BOOST_TEST_REQUIRE(response.ok(), Describe(response.status()));
  BOOST_TEST(response->status == 200);
  BOOST_TEST_REQUIRE(server.Received().size() == 1u);
  BOOST_TEST(server.Received()[0].client_cn == "kubefold-client");

  // No client certificate: the server refuses the handshake.
  response = MustTransport(ConfigFor(server))->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(static_cast<int>(response.status().code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(response.status().message(), "TLS alert \"certificate required\""),
             response.status().message());

  // A client certificate from a CA the server does not trust: refused.
  config.client_certificate_pem = Pki().client_other_ca.cert_pem;
  config.client_key_pem = Pki().client_other_ca.key_pem;
  response = MustTransport(config)->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(static_cast<int>(response.status().code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(response.status().message(), "TLS alert \"unknown CA\""), response.status().message());
  // The server counts a failed handshake after sending its alert: poll.
  const auto deadline = Clock::now() + 2s;
  while (server.handshake_failures() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  BOOST_TEST(server.handshake_failures() == 2);
  BOOST_TEST(server.Received().size() == 1u);
}

BOOST_AUTO_TEST_CASE(unusable_pem_is_an_invalid_argument_naming_the_field) {
  RestConfig config;
  config.server = "https://127.0.0.1:1";
  config.ca_pem = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
  auto t = NewHttpTransport(config);
  BOOST_TEST_REQUIRE(!t.ok());
  BOOST_TEST_MESSAGE(t.status().message());
  BOOST_TEST(static_cast<int>(t.status().code()) == static_cast<int>(StatusCode::kInvalidArgument));
  BOOST_TEST(t.status().message().rfind("ca_pem:", 0) == 0u, t.status().message());

  config.ca_pem = Pki().ca_pem;
  config.client_certificate_pem = Pki().client.cert_pem;
  config.client_key_pem = Pki().server_ip.key_pem;  // not this certificate's key
  t = NewHttpTransport(config);
  BOOST_TEST_REQUIRE(!t.ok());
  BOOST_TEST_MESSAGE(t.status().message());
  BOOST_TEST(t.status().message().rfind("client_key_pem:", 0) == 0u, t.status().message());
  BOOST_TEST(!Contains(t.status().message(), "PRIVATE KEY"));

  config.client_key_pem = "";
  t = NewHttpTransport(config);
  BOOST_TEST_REQUIRE(!t.ok());
  BOOST_TEST_MESSAGE(t.status().message());
  BOOST_TEST(t.status().message().rfind("client_key_pem:", 0) == 0u, t.status().message());

  config = RestConfig();
  config.server = "ftp://127.0.0.1";
  t = NewHttpTransport(config);
  BOOST_TEST_REQUIRE(!t.ok());
  BOOST_TEST_MESSAGE(t.status().message());
  BOOST_TEST(t.status().message().rfind("server:", 0) == 0u, t.status().message());
}

// ---------------------------------------------------------------------------
// Plain HTTP, responses, path prefix
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(plain_http_posts_the_body_under_the_server_path_prefix) {
  TestServer server(Plain(), Ok);
  RestConfig config;
  config.server = server.Url() + "/k8s/clusters/c-1/";
  auto transport = MustTransport(config);
  HttpRequest request = Get("/api/v1/namespaces/default/configmaps?fieldManager=kubefold");
  request.method = "POST";
  request.headers = {{"Content-Type", "application/json"}};
  request.body = R"({"kind":"ConfigMap"})";
  auto response = transport->Send(request);
  BOOST_TEST_REQUIRE(response.ok(), Describe(response.status()));
  BOOST_TEST(response->status == 200);
  auto received = server.Received();
  BOOST_TEST_REQUIRE(received.size() == 1u);
  BOOST_TEST(received[0].method == "POST");
  BOOST_TEST(received[0].target == "/k8s/clusters/c-1/api/v1/namespaces/default/configmaps?fieldManager=kubefold");
  BOOST_TEST(received[0].Header("Content-Type") == "application/json");
  BOOST_TEST(received[0].body == request.body);
}

BOOST_AUTO_TEST_CASE(basic_auth_is_sent_over_https_only) {
  TestServer tls(Tls(Pki().server_ip), Ok);
  RestConfig config = ConfigFor(tls);
  config.username = "admin";
  config.password = "secret";
  BOOST_TEST_REQUIRE(MustTransport(config)->Send(Get("/version")).ok());
  BOOST_TEST(tls.Received().at(0).Header("Authorization") == "Basic YWRtaW46c2VjcmV0");

  TestServer plain(Plain(), Ok);
  config.server = plain.Url();
  BOOST_TEST_REQUIRE(MustTransport(config)->Send(Get("/version")).ok());
  BOOST_TEST(plain.Received().at(0).Header("Authorization") == "");
}

BOOST_AUTO_TEST_CASE(client_and_server_errors_are_responses_with_body_and_headers) {
  TestServer server(Plain(), [](const ReceivedRequest& r, ServerConnection& c) {
    if (r.target == "/missing") {
      c.Respond(404, {{"Content-Type", "application/json"}},
                R"({"kind":"Status","status":"Failure","reason":"NotFound","code":404})");
    } else if (r.target == "/redirect") {
      c.Respond(307, {{"Location", "http://elsewhere.invalid/"}}, "");
    } else {
      c.Respond(503, {{"Retry-After", "2"}}, "busy");
    }
  });
  auto transport = MustTransport(ConfigFor(server, ""));
  auto missing = transport->Send(Get("/missing"));
  BOOST_TEST_REQUIRE(missing.ok(), Describe(missing.status()));
  BOOST_TEST(missing->status == 404);
  BOOST_TEST(Contains(missing->body, R"("reason":"NotFound")"));
  BOOST_TEST(FindHeader(missing->headers, "content-type") == "application/json");
  auto busy = transport->Send(Get("/busy"));
  BOOST_TEST_REQUIRE(busy.ok(), Describe(busy.status()));
  BOOST_TEST(busy->status == 503);
  BOOST_TEST(busy->body == "busy");
  BOOST_TEST(FindHeader(busy->headers, "Retry-After") == "2");
  // Redirects are returned, not followed (they would carry credentials away).
  auto redirect = transport->Send(Get("/redirect"));
  BOOST_TEST_REQUIRE(redirect.ok(), Describe(redirect.status()));
  BOOST_TEST(redirect->status == 307);
  BOOST_TEST(server.Received().size() == 3u);
}

// ---------------------------------------------------------------------------
// Failures and deadlines
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(connection_refused_is_unavailable_and_says_so) {
  RestConfig config;
  config.server = "http://127.0.0.1:" + std::to_string(testing::UnusedPort());
  auto response = MustTransport(config)->Send(Get("/version"));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(static_cast<int>(response.status().code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(response.status().message(), "connection refused"), response.status().message());
  BOOST_TEST(Contains(response.status().message(), "GET /version on " + config.server),
             response.status().message());
}

BOOST_AUTO_TEST_CASE(send_times_out_on_a_server_that_never_answers) {
  TestServer server(Tls(Pki().server_ip), [](const ReceivedRequest&, ServerConnection& c) {
    c.StallUntilPeerCloses(2s);
  });
  auto transport = MustTransport(ConfigFor(server));
  const auto start = Clock::now();
  auto response = transport->Send(Get("/version", 300ms));
  const auto elapsed = Clock::now() - start;
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(static_cast<int>(response.status().code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(response.status().message(), "timed out after 300 ms"), response.status().message());
  BOOST_TEST(elapsed >= 300ms);
  BOOST_TEST(elapsed < 2500ms);
}

BOOST_AUTO_TEST_CASE(send_timeout_covers_the_whole_exchange_not_just_silence) {
  // A byte every 50 ms never lets an inactivity timer fire; the exchange as
  // a whole (2 s) still outlasts the 400 ms deadline.
  TestServer server(Plain(), [](const ReceivedRequest&, ServerConnection& c) {
    if (!c.Write("HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")) return;
    for (int i = 0; i < 40; ++i) {
      if (c.StallUntilPeerCloses(50ms) || !c.Write("x")) return;
    }
  });
  auto transport = MustTransport(ConfigFor(server, ""));
  const auto start = Clock::now();
  auto response = transport->Send(Get("/slow", 400ms));
  BOOST_TEST_REQUIRE(!response.ok());
  BOOST_TEST_MESSAGE(response.status().message());
  BOOST_TEST(Contains(response.status().message(), "timed out after 400 ms"), response.status().message());
  BOOST_TEST((Clock::now() - start) < 1800ms);
}

BOOST_AUTO_TEST_CASE(open_times_out_when_the_headers_never_come) {
  TestServer server(Plain(), [](const ReceivedRequest&, ServerConnection& c) { c.StallUntilPeerCloses(2s); });
  auto transport = MustTransport(ConfigFor(server, ""));
  auto stream = transport->Open(Get("/api/v1/pods?watch=true", 300ms));
  BOOST_TEST_REQUIRE(!stream.ok());
  BOOST_TEST_MESSAGE(stream.status().message());
  BOOST_TEST(static_cast<int>(stream.status().code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(stream.status().message(), "no response headers within 300 ms"), stream.status().message());
}

// ---------------------------------------------------------------------------
// Streamed bodies
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_streamed_body_arrives_chunk_by_chunk_before_the_next_is_sent) {
  // Event boundaries fall anywhere in the chunks, as in a real watch.
  const std::vector<std::string> chunks = {R"({"type":"ADD)", R"(ED","object":{}})" "\n" R"({"ty)",
                                           R"(pe":"DELETED","object":{}})" "\n"};
  std::vector<std::unique_ptr<Notification>> read(chunks.size());
  for (auto& n : read) n = std::make_unique<Notification>();
  std::atomic<bool> server_waited_ok{true};
  TestServer server(Tls(Pki().server_ip), [&](const ReceivedRequest&, ServerConnection& c) {
    c.StartChunked(200, {{"Content-Type", "application/json"}});
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      c.Chunk(chunks[i]);
      // The next chunk goes out only once the client has read this one.
      if (!read[i]->WaitFor(2s)) server_waited_ok = false;
    }
    c.EndChunked();
  });
  auto transport = MustTransport(ConfigFor(server));
  auto stream = transport->Open(Get("/api/v1/pods?watch=true"));
  BOOST_TEST_REQUIRE(stream.ok(), Describe(stream.status()));
  BOOST_TEST(stream->status == 200);
  BOOST_TEST(FindHeader(stream->headers, "Transfer-Encoding") == "chunked");
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    auto bytes = stream->body->Read();
    BOOST_TEST_REQUIRE(bytes.ok(), Describe(bytes.status()));
    BOOST_TEST(*bytes == chunks[i]);
    read[i]->Notify();
  }
  auto end = stream->body->Read();
  BOOST_TEST_REQUIRE(end.ok(), Describe(end.status()));
  BOOST_TEST(*end == "");  // clean end of the body
  end = stream->body->Read();
  BOOST_TEST_REQUIRE(end.ok());
  BOOST_TEST(*end == "");  // and it stays ended
  BOOST_TEST(server_waited_ok.load());
}

BOOST_AUTO_TEST_CASE(an_error_status_on_open_still_has_its_body) {
  TestServer server(Plain(), [](const ReceivedRequest&, ServerConnection& c) {
    c.Respond(410, {{"Content-Type", "application/json"}}, R"({"kind":"Status","code":410})");
  });
  auto stream = MustTransport(ConfigFor(server, ""))->Open(Get("/api/v1/pods?watch=true"));
  BOOST_TEST_REQUIRE(stream.ok(), Describe(stream.status()));
  BOOST_TEST(stream->status == 410);
  std::string body;
  for (;;) {
    auto bytes = stream->body->Read();
    BOOST_TEST_REQUIRE(bytes.ok(), Describe(bytes.status()));
    if (bytes->empty()) break;
    body += *bytes;
  }
  BOOST_TEST(body == R"({"kind":"Status","code":410})");
}

BOOST_AUTO_TEST_CASE(a_stalled_stream_is_unavailable_after_the_inactivity_timeout) {
  TestServer server(Tls(Pki().server_ip), [](const ReceivedRequest& r, ServerConnection& c) {
    if (r.target == "/warm") {
      c.Respond(200, {}, "");
      return;
    }
    c.StartChunked(200, {});
    c.Chunk("{\"type\":\"BOOKMARK\"}\n");
    c.StallUntilPeerCloses(2s);
  });
  auto transport = MustTransport(ConfigFor(server));
  // The deadline covers the headers too: warm a keep-alive connection
  // first so that a slow TLS handshake (sanitizers) does not eat it.
  BOOST_TEST_REQUIRE(transport->Send(Get("/warm")).ok());
  auto stream = transport->Open(Get("/api/v1/pods?watch=true", 1000ms));
  BOOST_TEST_REQUIRE(stream.ok(), Describe(stream.status()));
  auto first = stream->body->Read();
  BOOST_TEST_REQUIRE(first.ok(), Describe(first.status()));
  BOOST_TEST(*first == "{\"type\":\"BOOKMARK\"}\n");
  const auto start = Clock::now();
  auto stalled = stream->body->Read();
  const auto elapsed = Clock::now() - start;
  BOOST_TEST_REQUIRE(!stalled.ok());
  BOOST_TEST_MESSAGE(stalled.status().message());
  BOOST_TEST(static_cast<int>(stalled.status().code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(stalled.status().message(), "no data for 1000 ms (inactivity timeout)"),
             stalled.status().message());
  BOOST_TEST(elapsed >= 1000ms);
  BOOST_TEST(elapsed < 3000ms);
  // It stays failed.
  BOOST_TEST(!stream->body->Read().ok());
}

BOOST_AUTO_TEST_CASE(a_reset_connection_is_unavailable_after_the_bytes_before_it) {
  TestServer server(Plain(), [](const ReceivedRequest&, ServerConnection& c) {
    c.StartChunked(200, {});
    c.Chunk("partial");
    c.Reset();
  });
  auto stream = MustTransport(ConfigFor(server, ""))->Open(Get("/api/v1/pods?watch=true"));
  BOOST_TEST_REQUIRE(stream.ok(), Describe(stream.status()));
  std::string got;
  Status failure;
  for (int i = 0; i < 10; ++i) {
    auto bytes = stream->body->Read();
    if (!bytes.ok()) {
      failure = bytes.status();
      break;
    }
    BOOST_TEST_REQUIRE(!bytes->empty());  // never a clean end
    got += *bytes;
  }
  BOOST_TEST_MESSAGE(failure.message());
  BOOST_TEST(got == "partial");
  BOOST_TEST(static_cast<int>(failure.code()) == static_cast<int>(StatusCode::kUnavailable));
  BOOST_TEST(Contains(failure.message(), "connection broke"), failure.message());
}

BOOST_AUTO_TEST_CASE(cancel_from_another_thread_unblocks_a_waiting_read) {
  Notification stream_closed;
  TestServer server(Tls(Pki().server_ip), [&](const ReceivedRequest&, ServerConnection& c) {
    c.StartChunked(200, {});
    if (c.StallUntilPeerCloses(2s)) stream_closed.Notify();
  });
  auto transport = MustTransport(ConfigFor(server));
  auto stream = transport->Open(Get("/api/v1/pods?watch=true"));
  BOOST_TEST_REQUIRE(stream.ok(), Describe(stream.status()));
  BodyStream* body = stream->body.get();
  std::thread canceller([body] {
    // Give the Read below time to start waiting; if it has not, Cancel
    // still makes it return kCancelled, so the test cannot pass wrongly.
    std::this_thread::sleep_for(100ms);
    body->Cancel();
  });
  const auto start = Clock::now();
  auto bytes = body->Read();
  const auto elapsed = Clock::now() - start;
  canceller.join();
  BOOST_TEST_REQUIRE(!bytes.ok());
  BOOST_TEST_MESSAGE(bytes.status().message());
  BOOST_TEST(static_cast<int>(bytes.status().code()) == static_cast<int>(StatusCode::kCancelled));
  BOOST_TEST(elapsed < 2500ms);  // well before the 10 s inactivity deadline
  BOOST_TEST(static_cast<int>(body->Read().status().code()) == static_cast<int>(StatusCode::kCancelled));
  // Cancel closed the connection.
  BOOST_TEST(stream_closed.WaitFor(2s));
}

BOOST_AUTO_TEST_CASE(a_stream_may_outlive_its_transport_and_be_dropped_unread) {
  TestServer server(Plain(), [](const ReceivedRequest&, ServerConnection& c) {
    c.StartChunked(200, {});
    c.Chunk("a");
    c.StallUntilPeerCloses(2s);
  });
  Result<HttpStream> stream = InvalidArgument("unset");
  {
    auto transport = MustTransport(ConfigFor(server, ""));
    stream = transport->Open(Get("/watch"));
    BOOST_TEST_REQUIRE(stream.ok(), Describe(stream.status()));
  }
  auto bytes = stream->body->Read();
  BOOST_TEST_REQUIRE(bytes.ok(), Describe(bytes.status()));
  BOOST_TEST(*bytes == "a");
  stream->body.reset();  // closes the connection; the server thread ends
}

// ---------------------------------------------------------------------------
// Concurrency (run under ThreadSanitizer by `make test-tsan`)
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(concurrent_sends_and_streams_share_one_transport) {
  TestServer server(Tls(Pki().server_ip), [](const ReceivedRequest& r, ServerConnection& c) {
    if (r.target.rfind("/watch", 0) == 0) {
      c.StartChunked(200, {});
      c.Chunk("x\n");
      c.EndChunked();
    } else {
      c.Respond(200, {}, r.target);
    }
  });
  auto transport = MustTransport(ConfigFor(server));
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_failure;
  auto fail = [&](const std::string& why) {
    ++failures;
    std::lock_guard<std::mutex> lock(mu);
    if (first_failure.empty()) first_failure = why;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        std::string path = "/item/" + std::to_string(t) + "/" + std::to_string(i);
        auto response = transport->Send(Get(path));
        if (!response.ok()) fail(response.status().message());
        else if (response->body != path) fail("wrong body " + response->body);
        auto stream = transport->Open(Get("/watch"));
        if (!stream.ok()) {
          fail(stream.status().message());
          continue;
        }
        std::string body;
        for (;;) {
          auto bytes = stream->body->Read();
          if (!bytes.ok()) {
            fail(bytes.status().message());
            break;
          }
          if (bytes->empty()) break;
          body += *bytes;
        }
        if (body != "x\n") fail("wrong stream body " + body);
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(failures.load() == 0, first_failure);
}

}  // namespace
}  // namespace kubefold::kube
