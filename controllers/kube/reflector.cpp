#include "controllers/kube/reflector.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "controllers/kube/internal/utf8.h"
#include "controllers/kube/paths.h"

namespace kubefold::kube {

namespace {

constexpr size_t kMaxErrorBody = size_t{1} << 20;  // an error body read from a watch response
constexpr auto kVeryShortWatch = std::chrono::seconds(1);

std::string Describe(const ApiStatus& s) {
  std::string out = "HTTP " + std::to_string(s.code);
  if (!s.reason.empty()) out += " " + s.reason;
  if (!s.message.empty()) out += ": " + s.message;
  return out;
}

// Why a 200 answer to a list or watch cannot be read as JSON, from its
// Content-Type, or "" when it can. As client-go does, a missing
// Content-Type is taken as JSON and any other media type is refused: a
// proxy's HTML page or a protobuf body then gets an error naming what came
// instead of a parse error deep inside it. `body` (may be empty) gives the
// message its first bytes.
std::string NotJson(const Headers& headers, std::string_view body) {
  const std::string_view type = FindHeader(headers, "Content-Type");
  std::string media(type.substr(0, type.find(';')));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  for (char& c : media) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  if (type.empty() || media == "application/json") return "";
  std::string why = "the server answered 200 with Content-Type \"" + internal::ValidUtf8(type, 128) +
                    "\", not application/json";
  const std::string_view first = body.substr(0, body.find_first_of("\r\n"));
  if (!first.empty()) why += "; the body begins \"" + internal::ValidUtf8(first, 80) + "\"";
  return why;
}

}  // namespace

std::string_view ReflectorEventTypeName(ReflectorEventType t) {
  switch (t) {
    case ReflectorEventType::kReplace: return "replace";
    case ReflectorEventType::kSynced: return "synced";
    case ReflectorEventType::kAdded: return "added";
    case ReflectorEventType::kModified: return "modified";
    case ReflectorEventType::kDeleted: return "deleted";
  }
  return "unknown";
}

Reflector::Reflector(Transport& transport, ReflectorOptions options, ReflectorHooks hooks)
    : transport_(transport),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      backoff_(options_.backoff, hooks_.clock ? hooks_.clock : ClockFn([] { return Clock::now(); }), hooks_.seed),
      rng_(hooks_.seed ^ 0x5eedULL) {
  if (!hooks_.clock) hooks_.clock = [] { return Clock::now(); };
}

void Reflector::Log(std::string_view message) const {
  if (hooks_.log) hooks_.log(message);
}

bool Reflector::Sleep(std::chrono::milliseconds d) {
  if (stop_.load()) return false;
  if (hooks_.sleep) return hooks_.sleep(d) && !stop_.load();
  std::unique_lock<std::mutex> lock(mu_);
  stop_cv_.wait_for(lock, d, [&] { return stop_.load() || wake_; });
  wake_ = false;
  return !stop_.load();
}

void Reflector::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = true;
  stop_cv_.notify_all();
}

void Reflector::Stop() {
  stop_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  if (open_stream_ != nullptr) open_stream_->Cancel();
  stop_cv_.notify_all();
}

std::string Reflector::resume_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resume_version_;
}

ReflectorStats Reflector::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::string Reflector::CollectionPath() const {
  return ResourcePath(options_.type.group, options_.type.version, options_.resource, options_.namespace_name);
}

std::string Reflector::Query(std::vector<std::pair<std::string, std::string>> params) const {
  if (!options_.label_selector.empty()) params.emplace_back("labelSelector", options_.label_selector);
  if (!options_.field_selector.empty()) params.emplace_back("fieldSelector", options_.field_selector);
  std::string q;
  for (const auto& [k, v] : params) {
    q += q.empty() ? '?' : '&';
    q += k;
    q += '=';
    q += PercentEncode(v);
  }
  return q;
}

std::chrono::milliseconds Reflector::RetryAfter(const Headers& headers) const {
  auto ra = ParseRetryAfter(FindHeader(headers, "Retry-After"));
  return ra ? std::chrono::duration_cast<std::chrono::milliseconds>(*ra) : std::chrono::milliseconds(0);
}

bool Reflector::WaitAfterFailure(std::string_view what, std::chrono::milliseconds at_least) {
  std::chrono::milliseconds delay = std::max(backoff_.Next(), at_least);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.errors;
  }
  Log(std::string(what) + "; retrying in " + std::to_string(delay.count()) + " ms");
  return Sleep(delay);
}

Result<HttpResponse> Reflector::SendList(const std::string& resource_version, const std::string& continue_token,
                                         int limit) {
  std::vector<std::pair<std::string, std::string>> params;
  if (limit > 0) params.emplace_back("limit", std::to_string(limit));
  if (!continue_token.empty()) {
    params.emplace_back("continue", continue_token);
  } else if (!resource_version.empty()) {
    params.emplace_back("resourceVersion", resource_version);
  }
  HttpRequest req;
  req.method = "GET";
  req.path_and_query = CollectionPath() + Query(std::move(params));
  req.headers.emplace_back("Accept", "application/json");
  req.timeout = options_.request_timeout;
  req.max_response_bytes = options_.max_list_bytes;
  if (hooks_.throttle) hooks_.throttle();
  if (hooks_.authorize) {
    if (Status s = hooks_.authorize(req); !s.ok()) return s;
  }
  return transport_.Send(req);
}

Reflector::Next Reflector::ListAndReplace() {
  std::vector<DecodedObject> all;
  std::string list_rv, continue_token;
  int limit = options_.page_size;
  const std::string what = "list " + CollectionPath();
  for (;;) {
    if (stop_.load()) return Next::kStop;
    auto r = SendList("", continue_token, limit);
    if (!r.ok() && r.status().code() == StatusCode::kResourceExhausted && limit > 1) {
      // The page is over max_list_bytes (the transport stopped reading it):
      // the same page again, in halves, as large objects need.
      Log(what + ": " + r.status().message() + " (max_list_bytes); asking for pages of " +
          std::to_string(limit / 2) + " instead of " + std::to_string(limit));
      limit /= 2;
      continue;
    }
    if (!r.ok()) {
      std::string why = what + ": " + r.status().message();
      if (r.status().code() == StatusCode::kResourceExhausted) {
        why += limit == 1 ? "; a single object is larger than max_list_bytes"
                          : "; the unpaginated list is larger than max_list_bytes";
      }
      return WaitAfterFailure(why) ? Next::kRelist : Next::kStop;
    }
    if (r->status == 200) {
      if (std::string why = NotJson(r->headers, r->body); !why.empty()) {
        return WaitAfterFailure(what + ": " + why) ? Next::kRelist : Next::kStop;
      }
      auto page = DecodeList(r->body, options_.type);
      if (!page.ok()) return WaitAfterFailure(what + ": " + page.status().message()) ? Next::kRelist : Next::kStop;
      if (list_rv.empty()) list_rv = page->resource_version;  // every page carries the first page's
      for (DecodedObject& o : page->items) all.push_back(std::move(o));
      if (page->continue_token.empty()) break;
      continue_token = std::move(page->continue_token);
      continue;
    }
    const ApiStatus st = DecodeStatus(r->body, r->status);
    if (r->status == 410 && !continue_token.empty()) {
      // The continue token expired between pages: one full list instead.
      Log(what + ": continue token expired (" + Describe(st) + "); listing again without pages");
      all.clear();
      list_rv.clear();
      continue_token.clear();
      limit = 0;
      continue;
    }
    if (r->status == 401 && hooks_.on_unauthorized) hooks_.on_unauthorized();
    const bool retry_after = r->status == 429 || r->status >= 500;
    return WaitAfterFailure(what + ": " + Describe(st), retry_after ? RetryAfter(r->headers) : std::chrono::milliseconds(0))
               ? Next::kRelist
               : Next::kStop;
  }
  EmitReplace(std::move(all), list_rv);
  return Next::kWatch;
}

void Reflector::EmitReplace(std::vector<DecodedObject> objects, const std::string& resource_version) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    resume_version_ = resource_version;
    ++stats_.lists;
  }
  ReflectorEvent replace;
  replace.type = ReflectorEventType::kReplace;
  replace.resource_version = resource_version;
  replace.objects = std::move(objects);
  hooks_.sink(std::move(replace));
  ReflectorEvent synced;
  synced.type = ReflectorEventType::kSynced;
  synced.resource_version = resource_version;
  hooks_.sink(std::move(synced));
}

Reflector::Next Reflector::Watch(bool initial) {
  const std::string rv = initial ? std::string() : resume_version();
  // After a failure, a streaming list has nothing to resume from: relist.
  const Next again = initial ? Next::kRelist : Next::kWatch;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto timeout_seconds = static_cast<int64_t>(static_cast<double>(options_.min_watch_timeout.count()) *
                                                    (1.0 + unit(rng_)));
  std::vector<std::pair<std::string, std::string>> params = {{"watch", "true"}, {"allowWatchBookmarks", "true"}};
  if (initial) {
    params.emplace_back("sendInitialEvents", "true");
    params.emplace_back("resourceVersionMatch", "NotOlderThan");
  } else {
    params.emplace_back("resourceVersion", rv);
  }
  params.emplace_back("timeoutSeconds",
                      std::to_string(std::min<int64_t>(timeout_seconds, 2 * options_.min_watch_timeout.count() - 1)));
  HttpRequest req;
  req.method = "GET";
  req.path_and_query = CollectionPath() + Query(std::move(params));
  req.headers.emplace_back("Accept", "application/json");
  req.timeout = options_.watch_inactivity;
  const std::string what = initial ? "streaming list " + CollectionPath()
                                   : "watch " + CollectionPath() + " from resourceVersion " + rv;
  if (hooks_.throttle) hooks_.throttle();
  if (hooks_.authorize) {
    if (Status s = hooks_.authorize(req); !s.ok()) {
      return WaitAfterFailure(what + ": " + s.message()) ? again : Next::kStop;
    }
  }
  auto opened = transport_.Open(req);
  if (!opened.ok()) return WaitAfterFailure(what + ": " + opened.status().message()) ? again : Next::kStop;
  std::unique_ptr<BodyStream> body = std::move(opened->body);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.watches;
    open_stream_ = body.get();
    if (stop_.load()) body->Cancel();
  }
  struct Unregister {
    Reflector* self;
    ~Unregister() {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->open_stream_ = nullptr;
    }
  } unregister{this};
  // Every failure closes the watch before its backoff: a connection left
  // open would go on receiving what the server sends (an overlong line, the
  // rest of an error body) into the transport's buffer for as long as the
  // backoff lasts — unbounded memory from a fast or hostile server.
  auto fail = [&](const std::string& why, Next next,
                  std::chrono::milliseconds at_least = std::chrono::milliseconds(0)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_stream_ = nullptr;
    }
    body.reset();  // cancels a body not read to its end, closing the connection
    return WaitAfterFailure(why, at_least) ? next : Next::kStop;
  };

  if (opened->status != 200) {
    std::string text;
    while (text.size() < kMaxErrorBody) {
      auto chunk = body->Read();
      if (!chunk.ok() || chunk->empty()) break;
      text += *chunk;
    }
    const ApiStatus st = DecodeStatus(text, opened->status);
    if (initial && opened->status == 422) {
      // The server does not do streaming lists (or refuses these parameters).
      Log(what + ": " + Describe(st) + "; falling back to list and watch");
      streaming_unsupported_ = true;
      return Next::kRelist;
    }
    if (IsResourceExpired(st)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.expired;
      }
      return fail(what + ": " + Describe(st) + "; relisting", Next::kRelist);
    }
    if (IsTooLargeResourceVersion(st)) {
      // The server has not reached the resume point (a lagging replica, or
      // a restore): waiting for it could take forever. Relist from the
      // newest state instead (lists carry no resourceVersion), as client-go
      // does after TooLargeResourceVersion.
      return fail(what + ": " + Describe(st) + "; relisting from the newest state", Next::kRelist,
                  RetryAfter(opened->headers));
    }
    if (opened->status == 401 && hooks_.on_unauthorized) hooks_.on_unauthorized();
    const bool retry_after = opened->status == 429 || opened->status >= 500;
    return fail(what + ": " + Describe(st), again,
                retry_after ? RetryAfter(opened->headers) : std::chrono::milliseconds(0));
  }
  if (std::string why = NotJson(opened->headers, {}); !why.empty()) return fail(what + ": " + why, again);

  const Clock::time_point started = hooks_.clock();
  uint64_t received = 0;
  bool expired = false;
  std::string error_event;
  std::vector<DecodedObject> initial_objects;  // a streaming list's ADDEDs, until its bookmark
  // namespace/name -> index in initial_objects, so folding an event in costs
  // O(1), not a scan of everything received so far.
  std::unordered_map<std::string, std::size_t> initial_index;
  LineFramer framer(options_.max_line_bytes);
  auto on_line = [&](std::string_view line) -> Status {
    auto ev = DecodeWatchEvent(line, options_.type);
    if (!ev.ok()) return ev.status();
    ++received;
    switch (ev->type) {
      case EventType::kError:
        expired = IsResourceExpired(ev->status);
        error_event = Describe(ev->status);
        return Gone("ERROR event");
      case EventType::kBookmark: {
        if (initial && ev->initial_events_end) {
          initial = false;  // the rest of this stream is a plain watch
          EmitReplace(std::move(initial_objects), ev->resource_version);
          return Status::Ok();
        }
        std::lock_guard<std::mutex> lock(mu_);
        resume_version_ = ev->resource_version;
        ++stats_.bookmarks;
        return Status::Ok();
      }
      default: {
        if (initial) {
          // Initial events are ADDEDs; fold anything else in by key.
          std::string key = ev->object->ns + '/' + ev->object->workload.key.name;
          auto found = initial_index.find(key);
          if (ev->type == EventType::kDeleted) {
            if (found != initial_index.end()) {
              // Swap with the last and pop: order does not matter to a replace.
              const std::size_t at = found->second;
              initial_index.erase(found);
              if (at + 1 != initial_objects.size()) {
                initial_objects[at] = std::move(initial_objects.back());
                initial_index[initial_objects[at].ns + '/' + initial_objects[at].workload.key.name] = at;
              }
              initial_objects.pop_back();
            }
          } else if (found != initial_index.end()) {
            initial_objects[found->second] = std::move(*ev->object);
          } else {
            initial_index.emplace(std::move(key), initial_objects.size());
            initial_objects.push_back(std::move(*ev->object));
          }
          return Status::Ok();
        }
        ReflectorEvent out;
        out.type = ev->type == EventType::kAdded      ? ReflectorEventType::kAdded
                   : ev->type == EventType::kModified ? ReflectorEventType::kModified
                                                      : ReflectorEventType::kDeleted;
        out.resource_version = ev->resource_version;
        out.object = std::move(*ev->object);
        {
          std::lock_guard<std::mutex> lock(mu_);
          resume_version_ = out.resource_version;
          ++stats_.events;
        }
        hooks_.sink(std::move(out));
        return Status::Ok();
      }
    }
  };
  // The server does streaming lists (it did not answer 422), but this one
  // failed: list and watch this time; the next relist streams again.
  auto give_up_streaming = [&](const std::string& why) {
    Log(what + ": " + why + "; falling back to list and watch");
    return Next::kListInstead;
  };
  for (;;) {
    auto chunk = body->Read();
    if (!chunk.ok()) {
      if (chunk.status().code() == StatusCode::kCancelled || stop_.load()) return Next::kStop;
      if (initial) return give_up_streaming(chunk.status().message());
      return fail(what + ": " + chunk.status().message(), Next::kWatch);
    }
    if (chunk->empty() && initial) return give_up_streaming("the stream ended before the initial-events-end bookmark");
    if (chunk->empty()) {  // the server ended the watch
      if (framer.pending_bytes() > 0) {
        return fail(what + ": the stream ended inside an event (" + std::to_string(framer.pending_bytes()) + " bytes)",
                    Next::kWatch);
      }
      if (received == 0 && hooks_.clock() - started < kVeryShortWatch) {
        return fail(what + ": very short watch (closed within 1 s with no event)", Next::kWatch);
      }
      return Next::kWatch;  // resume at once, no relist
    }
    Status s = framer.Feed(*chunk, on_line);
    if (s.ok() && initial && hooks_.clock() - started > options_.initial_events_timeout) {
      return give_up_streaming("no initial-events-end bookmark within " +
                               std::to_string(options_.initial_events_timeout.count()) + " ms");
    }
    if (s.ok()) continue;
    if (!error_event.empty()) {
      if (expired) {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.expired;
      }
      // client-go relists after any ERROR event; a 410 must.
      return fail(what + ": " + error_event + "; relisting", Next::kRelist);
    }
    // After the initial-events-end bookmark the stream is a plain watch:
    // resume it from there rather than list again.
    return fail(what + ": " + s.message(), initial ? Next::kRelist : Next::kWatch);
  }
}

void Reflector::Run() {
  Next next = resume_version().empty() ? Next::kRelist : Next::kWatch;
  while (!stop_.load()) {
    switch (next) {
      case Next::kRelist:
        next = options_.streaming_list && !streaming_unsupported_ ? Watch(/*initial=*/true) : ListAndReplace();
        break;
      case Next::kListInstead: next = ListAndReplace(); break;
      case Next::kWatch: next = Watch(/*initial=*/false); break;
      case Next::kStop: return;
    }
  }
}

}  // namespace kubefold::kube
