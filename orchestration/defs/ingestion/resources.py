"""Resources of the ingestion checks. (A module that holds a ``Definitions`` object is loaded
as that object alone, so resources live here, apart from the checks.)"""

import dagster as dg


class GreatExpectationsResource(dg.ConfigurableResource):
    """An ephemeral GX 1.x data context (suites live in code, results in Dagster metadata)."""

    def validate(self, frame, suite_name: str, expectations: list) -> tuple[bool, list[dict]]:
        import great_expectations as gx

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False}
        batch = (
            context.data_sources.add_pandas(f"{suite_name}_source")
            .add_dataframe_asset(suite_name)
            .add_batch_definition_whole_dataframe("latest")
        )
        suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
        result = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch, suite=suite)
        ).run(batch_parameters={"dataframe": frame})
        details = [
            {
                "expectation": r.expectation_config.type,
                "column": r.expectation_config.kwargs.get("column")
                or ",".join(r.expectation_config.kwargs.get("column_list", [])),
                "success": bool(r.success),
                "unexpected": int(r.result.get("unexpected_count") or 0),
                "examples": [str(v) for v in (r.result.get("partial_unexpected_list") or [])[:3]],
            }
            for r in result.results
        ]
        return bool(result.success), details


defs = dg.Definitions(resources={"great_expectations": GreatExpectationsResource()})
