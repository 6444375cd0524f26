-- The Analyst's step: an engineering task first writes the spec the user confirms.
ALTER TABLE task_steps DROP CONSTRAINT task_steps_step_check;
ALTER TABLE task_steps ADD CONSTRAINT task_steps_step_check
    CHECK (step IN ('write_spec', 'scaffold', 'develop', 'test', 'analyze_env',
                    'resolve_secrets', 'deploy', 'health_check'));
