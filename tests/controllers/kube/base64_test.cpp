#define BOOST_TEST_MODULE base64
#include <boost/test/unit_test.hpp>

#include "controllers/kube/internal/base64.h"

namespace kubefold::kube::internal {
namespace {

BOOST_AUTO_TEST_CASE(decodes_standard_padded_base64_like_go_std_encoding) {
  BOOST_TEST(*Base64Decode("") == "");
  BOOST_TEST(*Base64Decode("Zg==") == "f");
  BOOST_TEST(*Base64Decode("Zm8=") == "fo");
  BOOST_TEST(*Base64Decode("Zm9v") == "foo");
  BOOST_TEST(*Base64Decode("Zm9vYg==") == "foob");
  BOOST_TEST(*Base64Decode("+/+/") == "\xfb\xff\xbf");
  BOOST_TEST(*Base64Decode("Zm9v\r\nYmFy\n") == "foobar");  // Go skips \r and \n
  BOOST_TEST(*Base64Decode("Zh==") == "f");                 // non-zero trailing bits tolerated, as in Go
}

BOOST_AUTO_TEST_CASE(rejects_what_go_std_encoding_rejects) {
  for (const char* bad : {"Zg", "Zg=", "Zm9", "Z===", "Zg==Zg==", "Zm9v YmFy", "-_-_", "Zm9v\t", "=Zg=", "Z=g="}) {
    BOOST_TEST(!Base64Decode(bad).has_value(), bad);
  }
}

BOOST_AUTO_TEST_CASE(encode_round_trips_every_length) {
  BOOST_TEST(Base64Encode("") == "");
  BOOST_TEST(Base64Encode("f") == "Zg==");
  BOOST_TEST(Base64Encode("fo") == "Zm8=");
  BOOST_TEST(Base64Encode("foo") == "Zm9v");
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 37));
    BOOST_TEST(*Base64Decode(Base64Encode(bytes)) == bytes);
  }
}

}  // namespace
}  // namespace kubefold::kube::internal
