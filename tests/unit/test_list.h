/* Every unit test, once. Grouped by the module under test (tests/unit/test_<module>.c). */
/* fp_time */
FP_TEST_ENTRY(time_format_epoch)
FP_TEST_ENTRY(time_format_known_instants)
FP_TEST_ENTRY(time_format_out_of_range)
FP_TEST_ENTRY(time_parse_offsets)
FP_TEST_ENTRY(time_parse_fractions)
FP_TEST_ENTRY(time_parse_variants)
FP_TEST_ENTRY(time_parse_rejects)
FP_TEST_ENTRY(time_civil_round_trip)
FP_TEST_ENTRY(time_format_parse_round_trip)
FP_TEST_ENTRY(time_clocks)
/* fp_json, fp_buf */
FP_TEST_ENTRY(buf_append_and_grow)
FP_TEST_ENTRY(buf_printf)
FP_TEST_ENTRY(buf_integers)
FP_TEST_ENTRY(json_string_escapes)
FP_TEST_ENTRY(json_string_utf8_valid)
FP_TEST_ENTRY(json_string_utf8_invalid)
FP_TEST_ENTRY(json_string_fuzz)
FP_TEST_ENTRY(json_double_text)
FP_TEST_ENTRY(json_double_round_trip)
FP_TEST_ENTRY(json_key)
/* fp_record */
FP_TEST_ENTRY(record_golden_encode)
FP_TEST_ENTRY(record_design_example_decodes)
FP_TEST_ENTRY(record_full_round_trip)
FP_TEST_ENTRY(record_strings_escaping_unicode)
FP_TEST_ENTRY(record_negative_coordinates)
FP_TEST_ENTRY(record_optional_fields_omitted)
FP_TEST_ENTRY(record_hex_io_lowercased)
FP_TEST_ENTRY(record_decode_errors)
FP_TEST_ENTRY(record_err_codes)
FP_TEST_ENTRY(record_reset_and_reuse)
FP_TEST_ENTRY(record_arena_growth)
FP_TEST_ENTRY(record_encode_failures)
FP_TEST_ENTRY(record_rejects_invalid_utf8)
/* fp_config, fp_kafka */
FP_TEST_ENTRY(config_defaults)
FP_TEST_ENTRY(config_environment_overrides)
FP_TEST_ENTRY(config_rejects_bad_values)
FP_TEST_ENTRY(config_redacts_dsn_passwords)
FP_TEST_ENTRY(config_secret_names)
FP_TEST_ENTRY(kafka_env_to_property)
/* fp_metrics */
FP_TEST_ENTRY(metrics_exposition_golden)
FP_TEST_ENTRY(metrics_same_series_is_shared)
/* fp_dlq */
FP_TEST_ENTRY(dlq_headers)
/* fp_offsets */
FP_TEST_ENTRY(offsets_contiguous_prefix)
FP_TEST_ENTRY(offsets_partitions_independent_and_growth)
FP_TEST_ENTRY(offsets_forget_ignores_stale_tokens)
/* parser-svc: decode, canonical */
FP_TEST_ENTRY(decode_canonical_sets_received_at_and_format)
FP_TEST_ENTRY(decode_errors_have_stable_codes)
FP_TEST_ENTRY(decode_detect_by_name_and_content_type)
/* sink-svc: rows */
FP_TEST_ENTRY(rows_copy_line_full_record)
FP_TEST_ENTRY(rows_copy_line_minimal_record)
/* parser-svc: teltonika, teltonika_frame */
/* parser-svc: senml */
