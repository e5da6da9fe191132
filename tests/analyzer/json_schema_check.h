// tests/analyzer/json_schema_check.h: a small JSON Schema validator for the
// subset docs/leak-report.schema.json uses: type, required, properties,
// items, enum, minimum and local $ref ("#/$defs/NAME").
#ifndef HEAPSIGHT_TESTS_ANALYZER_JSON_SCHEMA_CHECK_H_
#define HEAPSIGHT_TESTS_ANALYZER_JSON_SCHEMA_CHECK_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace heapsight::testing {

class JsonSchemaCheck {
 public:
  explicit JsonSchemaCheck(nlohmann::json schema) : root_(std::move(schema)) {}

  // Every violation, as "path: what"; empty when `doc` conforms.
  std::vector<std::string> Validate(const nlohmann::json& doc) const {
    std::vector<std::string> errors;
    Check(root_, doc, "$", errors);
    return errors;
  }

 private:
  const nlohmann::json& Resolve(const nlohmann::json& schema) const {
    if (schema.contains("$ref")) {
      std::string ref = schema["$ref"];
      const std::string prefix = "#/$defs/";
      if (ref.rfind(prefix, 0) == 0) return root_["$defs"][ref.substr(prefix.size())];
    }
    return schema;
  }

  static bool TypeMatches(const std::string& type, const nlohmann::json& v) {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "integer") return v.is_number_integer();
    if (type == "number") return v.is_number();
    if (type == "boolean") return v.is_boolean();
    if (type == "null") return v.is_null();
    return false;
  }

  void Check(const nlohmann::json& schema_in, const nlohmann::json& v, const std::string& path,
             std::vector<std::string>& errors) const {
    const nlohmann::json& schema = Resolve(schema_in);
    if (schema.contains("type") && !TypeMatches(schema["type"], v)) {
      errors.push_back(path + ": expected " + schema["type"].get<std::string>() + ", got " +
                       v.type_name());
      return;
    }
    if (schema.contains("enum")) {
      bool found = false;
      for (const auto& e : schema["enum"]) found = found || e == v;
      if (!found) errors.push_back(path + ": value " + v.dump() + " not in enum");
    }
    if (schema.contains("minimum") && v.is_number() &&
        v.get<double>() < schema["minimum"].get<double>()) {
      errors.push_back(path + ": below minimum");
    }
    if (v.is_object()) {
      if (schema.contains("required")) {
        for (const auto& r : schema["required"]) {
          if (!v.contains(r.get<std::string>())) {
            errors.push_back(path + ": missing required field " + r.get<std::string>());
          }
        }
      }
      if (schema.contains("properties")) {
        for (const auto& [key, sub] : schema["properties"].items()) {
          if (v.contains(key)) Check(sub, v[key], path + "." + key, errors);
        }
      }
    }
    if (v.is_array() && schema.contains("items")) {
      for (size_t i = 0; i < v.size(); ++i) {
        Check(schema["items"], v[i], path + "[" + std::to_string(i) + "]", errors);
      }
    }
  }

  nlohmann::json root_;
};

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_ANALYZER_JSON_SCHEMA_CHECK_H_
