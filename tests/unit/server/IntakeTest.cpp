#include "relay/server/Intake.hpp"

#include "IntakeFastPath.hpp"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace relay::server {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kJson = "application/json";

IntakeParseResult single(std::string_view body, std::optional<std::string_view> type = kJson) {
  return parse_intake(type, body, IntakeKind::kSingle);
}

IntakeParseResult batch(std::string_view body) {
  return parse_intake(kJson, body, IntakeKind::kBatch);
}

void expect_error(const IntakeParseResult& r, int status, std::string_view code,
                  std::optional<std::size_t> index = std::nullopt) {
  ASSERT_FALSE(r.ok()) << "expected " << code;
  EXPECT_EQ(r.error->status, status) << r.error->message;
  EXPECT_EQ(r.error->code, code) << r.error->message;
  EXPECT_EQ(r.error->index, index) << r.error->message;
  EXPECT_TRUE(r.events.empty());
}

TEST(IntakeContentType, AcceptsJsonWithParametersAnyCase) {
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("Application/JSON"));
  EXPECT_TRUE(is_json_content_type("application/json; charset=utf-8"));
  EXPECT_TRUE(is_json_content_type("application/json;charset=UTF-8"));
  EXPECT_TRUE(is_json_content_type(" application/json "));
  EXPECT_FALSE(is_json_content_type("text/plain"));
  EXPECT_FALSE(is_json_content_type("application/jsonx"));
  EXPECT_FALSE(is_json_content_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_json_content_type(""));
}

TEST(IntakeParse, ContentTypeErrorsAre415) {
  const std::string body = R"({"event":"ticket.created","data":{}})";
  expect_error(single(body, std::nullopt), 415, "unsupported_media_type");
  expect_error(single(body, "text/plain"), 415, "unsupported_media_type");
  EXPECT_TRUE(single(body, "application/json; charset=utf-8").ok());
}

TEST(IntakeParse, ValidSingleEvent) {
  auto r =
      single(R"({"event":"ticket.created","data":{"z":1,"a":{"y":2,"b":3}},"id":"k-1:x.y_z"})");
  ASSERT_TRUE(r.ok()) << r.error->message;
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event_type, "ticket.created");
  EXPECT_EQ(r.events[0].id, "k-1:x.y_z");
  EXPECT_EQ(r.events[0].data, R"({"z":1,"a":{"y":2,"b":3}})");  // client key order kept
}

TEST(IntakeParse, IdIsOptional) {
  auto r = single(R"({"data":{},"event":"sla.breached"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.events[0].id, "");
  EXPECT_EQ(r.events[0].data, "{}");
}

TEST(IntakeParse, InvalidJsonIs400) {
  expect_error(single(""), 400, "invalid_json");
  expect_error(single("{"), 400, "invalid_json");
  expect_error(single("not json"), 400, "invalid_json");
  expect_error(single(R"({"event":"ticket.created","data":{}} trailing)"), 400, "invalid_json");
  expect_error(single("[1,2]"), 400, "invalid_json");
  expect_error(single("\"text\""), 400, "invalid_json");
  expect_error(single("null"), 400, "invalid_json");
  // A NUL byte would end nlohmann's input and hide what follows (found by intake_fuzz).
  using namespace std::string_literals;
  expect_error(single("{\"event\":\"ticket.created\",\"data\":{}}\0 trailing"s), 400,
               "invalid_json");
  expect_error(single("{\"event\":\"ticket.created\",\"data\":{}}\0"s), 400, "invalid_json");
  expect_error(batch("{\"events\":[{\"event\":\"ticket.created\",\"data\":{}}]}\0]"s), 400,
               "invalid_json");
}

TEST(IntakeParse, ANumberOutOfRangeIsNamedNotCalledInvalidJson) {
  auto r = single(R"({"event":"ticket.created","data":{"amount":1e400}})");
  expect_error(r, 400, "invalid_json");
  EXPECT_EQ(r.error->message,
            "the number 1e400 is out of range (JSON numbers must fit a 64-bit float, about "
            "±1.8e308)");
  // Still "not valid JSON" when it is not (the first problem in the text is the one named).
  auto broken = single(R"({"event":"ticket.created","data":{"amount":1})");
  expect_error(broken, 400, "invalid_json");
  EXPECT_EQ(broken.error->message, "the body is not valid JSON");
}

TEST(IntakeParse, UnknownEventTypeSuggestsTheClosest) {
  auto r = single(R"({"event":"ticket.creatd","data":{}})");
  expect_error(r, 422, "unknown_event_type");
  EXPECT_EQ(r.error->message,
            "unknown event type \"ticket.creatd\" (did you mean 'ticket.created'?)");
  auto far = single(R"({"event":"invoice.paid","data":{}})");
  expect_error(far, 422, "unknown_event_type");
  EXPECT_EQ(far.error->message, "unknown event type \"invoice.paid\"");
}

TEST(IntakeParse, BadFieldTypesAre400) {
  expect_error(single(R"({"event":5,"data":{}})"), 400, "invalid_json");
  expect_error(single(R"({"event":null,"data":{}})"), 400, "invalid_json");
  expect_error(single(R"({"event":"ticket.created","data":[]})"), 400, "invalid_json");
  expect_error(single(R"({"event":"ticket.created","data":"x"})"), 400, "invalid_json");
  expect_error(single(R"({"event":"ticket.created","data":null})"), 400, "invalid_json");
  expect_error(single(R"({"event":"ticket.created","data":{},"id":7})"), 400, "invalid_json");
}

TEST(IntakeParse, MissingFieldsAre422) {
  expect_error(single(R"({"data":{}})"), 422, "invalid_event");
  expect_error(single(R"({"event":"ticket.created"})"), 422, "invalid_event");
  expect_error(single("{}"), 422, "invalid_event");
}

TEST(IntakeParse, UnknownFieldIs422AndNamed) {
  auto r = single(R"({"event":"ticket.created","data":{},"evnt":"x"})");
  expect_error(r, 422, "invalid_event");
  EXPECT_NE(r.error->message.find("\"evnt\""), std::string::npos) << r.error->message;
  auto events = single(R"({"events":[]})");
  expect_error(events, 422, "invalid_event");
  EXPECT_NE(events.error->message.find("/v1/events/batch"), std::string::npos);
}

TEST(IntakeParse, UnknownEventTypeIs422) {
  expect_error(single(R"({"event":"ticket.exploded","data":{}})"), 422, "unknown_event_type");
  expect_error(single(R"({"event":"","data":{}})"), 422, "unknown_event_type");
  expect_error(single(R"({"event":"Ticket.Created","data":{}})"), 422, "unknown_event_type");
  for (auto type : kEventTypes) {
    EXPECT_TRUE(single(R"({"event":")" + std::string(type) + R"(","data":{}})").ok()) << type;
  }
}

TEST(IntakeParse, IdRules) {
  EXPECT_TRUE(is_valid_event_id("a"));
  EXPECT_TRUE(is_valid_event_id(std::string(128, 'x')));
  EXPECT_TRUE(is_valid_event_id("AZaz09_.:-"));
  EXPECT_FALSE(is_valid_event_id(""));
  EXPECT_FALSE(is_valid_event_id(std::string(129, 'x')));
  EXPECT_FALSE(is_valid_event_id("a b"));
  EXPECT_FALSE(is_valid_event_id("a/b"));
  EXPECT_FALSE(is_valid_event_id("é"));
  expect_error(single(R"({"event":"ticket.created","data":{},"id":""})"), 422, "invalid_event");
  expect_error(single(R"({"event":"ticket.created","data":{},"id":"a b"})"), 422, "invalid_event");
  expect_error(
      single(R"({"event":"ticket.created","data":{},"id":")" + std::string(129, 'a') + "\"}"), 422,
      "invalid_event");
}

TEST(IntakeParse, DeepNestingIsRefused) {
  std::string deep = R"({"event":"ticket.created","data":)";
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 100000; ++i) deep += "}";
  deep += "}";
  expect_error(single(deep), 400, "invalid_json");
  // Brackets inside strings do not count.
  auto r = single(R"({"event":"ticket.created","data":{"s":"[[[[{{{{\"]]]"}})");
  ASSERT_TRUE(r.ok()) << r.error->message;
}

TEST(IntakeBatch, ValidBatchKeepsOrder) {
  auto r = batch(R"({"events":[{"event":"ticket.created","data":{"n":1}},
                               {"event":"sla.warning","data":{"n":2},"id":"b"}]})");
  ASSERT_TRUE(r.ok()) << r.error->message;
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].event_type, "ticket.created");
  EXPECT_EQ(r.events[1].id, "b");
  EXPECT_EQ(r.events[1].data, R"({"n":2})");
}

TEST(IntakeBatch, Errors) {
  expect_error(batch("[]"), 400, "invalid_json");
  expect_error(batch(R"({"events":{}})"), 400, "invalid_json");
  expect_error(batch(R"({})"), 422, "invalid_event");
  expect_error(batch(R"({"events":[]})"), 422, "invalid_event");
  expect_error(batch(R"({"events":[{"event":"ticket.created","data":{}}],"x":1})"), 422,
               "invalid_event");
  std::string many = R"({"events":[)";
  for (int i = 0; i < 1001; ++i)
    many += std::string(i ? "," : "") + R"({"event":"ticket.created","data":{}})";
  many += "]}";
  expect_error(batch(many), 422, "invalid_event");
}

TEST(IntakeBatch, ThousandIsAllowed) {
  std::string body = R"({"events":[)";
  for (int i = 0; i < 1000; ++i)
    body += std::string(i ? "," : "") + R"({"event":"ticket.created","data":{}})";
  body += "]}";
  auto r = batch(body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.events.size(), 1000u);
}

TEST(IntakeBatch, FirstInvalidItemNamesItsIndex) {
  const std::string ok = R"({"event":"ticket.created","data":{}})";
  expect_error(batch(R"({"events":[)" + ok + "," + ok + R"(,{"event":"nope","data":{}},5]})"), 422,
               "unknown_event_type", 2);
  expect_error(batch(R"({"events":[)" + ok + R"(,5]})"), 400, "invalid_json", 1);
  expect_error(batch(R"({"events":[{"event":"ticket.created","data":1}]})"), 400, "invalid_json",
               0);
  expect_error(batch(R"({"events":[)" + ok + R"(,{"event":"ticket.created"}]})"), 422,
               "invalid_event", 1);
  expect_error(batch(R"({"events":[)" + ok + "," + ok +
                     R"(,{"event":"ticket.created","data":{},"id":"bad id"}]})"),
               422, "invalid_event", 2);
  expect_error(batch(R"({"events":[{"event":"ticket.created","data":{},"id":"x"},)"
                     R"({"event":"ticket.created","data":{},"id":"x"}]})"),
               422, "invalid_event", 1);
}

TEST(IntakeError, JsonShape) {
  EXPECT_EQ(error_json("invalid_json", "bad \"x\""),
            R"({"error":{"code":"invalid_json","message":"bad \"x\""}})");
  IntakeError e{422, "unknown_event_type", "m", 3};
  EXPECT_EQ(e.to_json(), R"({"error":{"code":"unknown_event_type","message":"m","index":3}})");
}

common::TimePoint at(std::int64_t ms) {
  return common::TimePoint(std::chrono::milliseconds(ms));
}

TEST(IntakePayload, ExactBytes) {
  // 2025-01-15T10:30:00.789Z
  const auto t = at(1736937000789);
  EXPECT_EQ(build_payload("evt_1", "ticket.created", t, R"({"b":1,"a":[true,null,"x"]})"),
            R"({"id":"evt_1","event":"ticket.created","created_at":"2025-01-15T10:30:00Z",)"
            R"("data":{"b":1,"a":[true,null,"x"]}})");
}

TEST(IntakePayload, FromParsedEventKeepsClientOrderAndIsCompact) {
  auto r = single(
      "{ \"data\" : { \"zeta\" : 1 , \"alpha\" : { \"y\" : \"\\u00e9\" , \"b\" : [ 1 , 2.5 ] } } ,"
      " \"event\" : \"message.created\" , \"id\" : \"abc\" }");
  ASSERT_TRUE(r.ok());
  config::Config config;
  auto events = build_new_events(std::move(r.events), config, at(1736937000000));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id, "abc");
  EXPECT_EQ(events[0].event_type, "message.created");
  EXPECT_EQ(events[0].created_at, at(1736937000000));
  EXPECT_EQ(events[0].payload,
            "{\"id\":\"abc\",\"event\":\"message.created\",\"created_at\":\"2025-01-15T10:30:00Z\","
            "\"data\":{\"zeta\":1,\"alpha\":{\"y\":\"\xC3\xA9\",\"b\":[1,2.5]}}}");
  EXPECT_TRUE(events[0].deliveries.empty());
}

TEST(IntakePayload, GeneratedIdsAndDeliveries) {
  config::Config config;
  config::WebhookConfig crm;
  crm.id = "crm";
  crm.events = {"ticket.created", "message.*"};
  crm.max_queued = 7;
  config::WebhookConfig off;
  off.id = "off";
  off.events = {"*"};
  off.enabled = false;
  off.max_queued = 3;
  config::WebhookConfig sla;
  sla.id = "sla";
  sla.events = {"sla.*"};
  config.webhooks = {crm, off, sla};

  auto r = batch(R"({"events":[{"event":"ticket.created","data":{}},)"
                 R"({"event":"customer.created","data":{}}]})");
  ASSERT_TRUE(r.ok());
  auto events = build_new_events(std::move(r.events), config, at(0));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].id.starts_with("evt_")) << events[0].id;
  EXPECT_EQ(events[0].id.size(), 4u + 26u);
  EXPECT_NE(events[0].id, events[1].id);
  EXPECT_TRUE(events[0].payload.starts_with("{\"id\":\"" + events[0].id + "\",\"event\":"));
  ASSERT_EQ(events[0].deliveries.size(), 2u);
  EXPECT_EQ(events[0].deliveries[0].webhook_id, "crm");
  EXPECT_EQ(events[0].deliveries[0].status, store::DeliveryStatus::kPending);
  EXPECT_EQ(events[0].deliveries[0].max_queued, 7u);
  EXPECT_TRUE(events[0].deliveries[0].id.starts_with("dlv_"));
  EXPECT_EQ(events[0].deliveries[1].webhook_id, "off");
  EXPECT_EQ(events[0].deliveries[1].status, store::DeliveryStatus::kPaused);
  EXPECT_EQ(events[0].deliveries[1].max_queued, 3u);
  ASSERT_EQ(events[1].deliveries.size(), 1u);
  EXPECT_EQ(events[1].deliveries[0].webhook_id, "off");
}

TEST(IntakeReceipt, ExactBytes) {
  store::EventReceipt receipt;
  receipt.id = "evt_1";
  receipt.event_type = "ticket.created";
  receipt.created_at = at(1736937000789);
  receipt.deliveries = {{"dlv_a", "crm"}, {"dlv_b", "ops"}};
  const std::string one =
      R"({"id":"evt_1","event":"ticket.created","created_at":"2025-01-15T10:30:00Z",)"
      R"("deliveries":[{"id":"dlv_a","webhook":"crm"},{"id":"dlv_b","webhook":"ops"}]})";
  EXPECT_EQ(receipt_json(receipt), one);
  receipt.duplicate = true;  // a duplicate answers with the same bytes
  EXPECT_EQ(receipt_json(receipt), one);
  store::EventReceipt none;
  none.id = "x";
  none.event_type = "sla.warning";
  none.created_at = at(0);
  EXPECT_EQ(batch_receipt_json({receipt, none}),
            "{\"events\":[" + one +
                R"(,{"id":"x","event":"sla.warning","created_at":"1970-01-01T00:00:00Z",)"
                R"("deliveries":[]}]})");
}

// The stored `data` is written by Intake's own compact writer; it must be byte for byte what
// nlohmann's dump gave before (escapes, key order, numbers, UTF-8 kept as is).
TEST(IntakeData, CompactTextIsNlohmannsDump) {
  const std::string data =
      R"({"z":1,"a":[true,false,null,-7,18446744073709551615,1.5,1e300,-0.0,2.50,1E2],)"
      R"("s":"q\"b\\s\/\b\f\n\r\t\u0001\u001f\u007f é \u00e9 \ud83d\ude00 end",)"
      R"("nested":{"":{},"e":[],"k\u0000":"x"}, "sp" : [ 1 , 2 ] })";
  const auto r = single(R"({"event":"ticket.created","data":)" + data + "}");
  ASSERT_TRUE(r.ok()) << r.error->message;
  const auto expected = nlohmann::ordered_json::parse(data).dump(
      -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  EXPECT_EQ(r.events.at(0).data, expected);
}

/// nlohmann's reading of `data`, as the store kept it before the simdjson fast path.
std::string reference_data(std::string_view data) {
  return nlohmann::ordered_json::parse(data).dump(-1, ' ', false,
                                                  nlohmann::ordered_json::error_handler_t::replace);
}

// Bodies at the edges of the fast path (simdjson): the ones it declines (duplicate keys, integers
// beyond 64 bits) go to the reference reading (nlohmann); numbers it reads itself must come out
// as nlohmann writes them. The stored bytes are nlohmann's either way.
TEST(IntakeData, UnusualBodiesAreStoredAsNlohmannReadsThem) {
  const std::vector<std::string> datas = {
      R"({"a":1,"b":2,"a":3})",             // duplicate key: first place, last value
      R"({"x":{"k":[1],"k":{"z":null}}})",  // duplicate key deeper down
      R"({"big":123456789012345678901234567890,"neg":-99999999999999999999})",  // beyond 64 bits
      R"({"n":-0,"f":-0.0,"e":1e-400,"u":18446744073709551615,"i":-9223372036854775808})",
      R"({"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,)"
      R"("k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k3":"again"})",
  };
  for (const auto& data : datas) {
    const auto r = single(R"({"event":"ticket.created","data":)" + data + "}");
    ASSERT_TRUE(r.ok()) << data << ": " << r.error->message;
    EXPECT_EQ(r.events.at(0).data, reference_data(data)) << data;
    const auto b = batch(R"({"events":[{"event":"ticket.created","data":)" + data + "}]}");
    ASSERT_TRUE(b.ok()) << data << ": " << b.error->message;
    EXPECT_EQ(b.events.at(0).data, reference_data(data)) << data;
  }
  // A byte order mark (nlohmann skips it, simdjson refuses it) and duplicate top-level fields
  // (the last one counts).
  auto r = single("\xEF\xBB\xBF{\"event\":\"ticket.created\",\"data\":{\"a\":1}}");
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.events.at(0).data, R"({"a":1})");
  r = single(R"({"event":"nope","data":{"a":1},"event":"ticket.created","data":{"b":2}})");
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.events.at(0).event_type, "ticket.created");
  EXPECT_EQ(r.events.at(0).data, R"({"b":2})");
  expect_error(single(R"({"event":"ticket.created","data":{},"event":5})"), 400, "invalid_json");
  const auto twice = batch(R"({"events":[],"events":[{"event":"ticket.created","data":{}}]})");
  ASSERT_TRUE(twice.ok()) << twice.error->message;
  EXPECT_EQ(twice.events.size(), 1u);
}

// The fast path takes the common case itself (a silent fall back to nlohmann on every body
// would keep the answers right and lose the point) and declines what it must.
TEST(IntakeFastPath, TakesValidBodiesAndDeclinesTheRest) {
  auto taken = detail::fast_parse_intake(
      R"({"id":"a:1","event":"ticket.created","data":{"s":"\u00e9\n","n":[1,-2,2.5,true,null]}})",
      IntakeKind::kSingle);
  ASSERT_TRUE(taken.has_value());
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ(taken->at(0).id, "a:1");
  EXPECT_EQ(taken->at(0).data, "{\"s\":\"\u00e9\\n\",\"n\":[1,-2,2.5,true,null]}");
  taken = detail::fast_parse_intake(
      R"({"events":[{"event":"ticket.created","data":{}},{"event":"sla.warning","data":{"a":1}}]})",
      IntakeKind::kBatch);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->size(), 2u);
  for (const std::string_view body : {
           R"({"event":"ticket.created","data":{"a":1,"a":2}})",  // duplicate key
           R"({"event":"ticket.created","data":{},"x":1})",       // unknown field
           R"({"event":"nope","data":{}})",                       // unknown type
           R"({"event":"ticket.created","data":[]})",             // data not an object
           R"({"event":"ticket.created","data":{},"id":"a b"})",  // invalid id
           R"({"event":"ticket.created","data":{"n":1e400}})",    // out of range
           R"({"event":"ticket.created","data":{}} x)",           // not JSON
       }) {
    EXPECT_FALSE(detail::fast_parse_intake(body, IntakeKind::kSingle).has_value()) << body;
  }
  EXPECT_FALSE(
      detail::fast_parse_intake(R"({"events":[{"event":"ticket.created","data":{},"id":"x"},)"
                                R"({"event":"ticket.created","data":{},"id":"x"}]})",
                                IntakeKind::kBatch)
          .has_value());
}

// kMaxJsonDepth counts the body's own object as level 1, the same on both readers.
TEST(IntakeData, DepthLimitIsExactOnBothKinds) {
  const auto nested = [](std::size_t levels) {
    std::string text;
    for (std::size_t i = 0; i < levels; ++i) text += "[";
    for (std::size_t i = 0; i < levels; ++i) text += "]";
    return text;
  };
  // single: body (1) + data (2) + arrays; batch: body, events, item, data, arrays.
  const auto single_body = [&](std::size_t arrays) {
    return R"({"event":"ticket.created","data":{"a":)" + nested(arrays) + "}}";
  };
  EXPECT_TRUE(single(single_body(kMaxJsonDepth - 2)).ok());
  expect_error(single(single_body(kMaxJsonDepth - 1)), 400, "invalid_json");
  const auto batch_body = [&](std::size_t arrays) {
    return R"({"events":[{"event":"ticket.created","data":{"a":)" + nested(arrays) + "}}]}";
  };
  EXPECT_TRUE(batch(batch_body(kMaxJsonDepth - 4)).ok());
  expect_error(batch(batch_body(kMaxJsonDepth - 3)), 400, "invalid_json");
}

}  // namespace
}  // namespace relay::server
