-- Serving: recommendations, similar items and session recommendations as SQL.
-- Applied by the Alembic migrations; every function reads the active model only.

CREATE OR REPLACE FUNCTION reco.active_model(
    OUT version integer, OUT dimensions integer, OUT parameters jsonb,
    OUT created_at timestamptz
)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT m.version, m.dimensions, m.parameters, m.created_at
      INTO version, dimensions, parameters, created_at
      FROM reco.models AS m
     WHERE m.is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reco-db has no active model'
            USING ERRCODE = 'no_data_found',
                  HINT = 'run `reco-db train` to train and activate one';
    END IF;
END
$$;


-- The vector an item contributes as a query (to a history, a session or its
-- own neighbours). Items learned from behaviour have a trained query vector;
-- for items known by their text the encoder is trained for the item side, so
-- their item vector stands in for both.
CREATE OR REPLACE FUNCTION reco.query_vector(
    source text, query_embedding vector, embedding vector
)
RETURNS vector
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN source = 'behaviour'
                THEN coalesce(query_embedding, embedding)
                ELSE embedding END
$$;


CREATE OR REPLACE FUNCTION reco.check_k(k integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF k IS NULL OR k < 1 THEN
        RAISE EXCEPTION 'k must be a positive number of items, got %',
                        coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN k;
END
$$;


-- An item is in category `wanted` when its category is that name or lists it
-- among parts separated by | , ; or / (as the text model reads it), any case.
CREATE OR REPLACE FUNCTION reco.in_category(item_category text, wanted text)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT lower(btrim(wanted)) = ANY (
        regexp_split_to_array(lower(btrim(item_category)), '\s*[|,;/]\s*'))
$$;


-- The nearest-neighbour query behind every recommendation. It is built as text
-- because each model version has its own dimension and its own partial HNSW
-- index on (embedding::vector(d)) WHERE model_version = v: the planner uses that
-- index only when the cast and the version are literals. Parameters:
-- $1 query vector, $2 item ids to leave out, $3 user whose seen items are left
-- out (or NULL), $4 category (or NULL), $5 candidate item ids (or NULL).
CREATE OR REPLACE FUNCTION reco.nearest_items_sql(
    version integer, dimensions integer, k integer, exact boolean DEFAULT false
)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format(
        $query$
        SELECT nearest.item_id, nearest.score
          FROM (SELECT e.item_id,
                       1 - (e.embedding::vector(%1$s) <=> $1::vector(%1$s)) AS score
                  FROM reco.item_embeddings AS e
                  JOIN reco.items AS i ON i.item_id = e.item_id
                 WHERE e.model_version = %2$s
                   AND i.available
                   AND e.item_id <> ALL ($2)
                   AND ($3::text IS NULL OR NOT EXISTS (
                        SELECT 1 FROM reco.events AS seen
                         WHERE seen.user_id = $3 AND seen.item_id = e.item_id))
                   AND ($4::text IS NULL OR reco.in_category(i.category, $4))
                   AND ($5::text[] IS NULL OR e.item_id = ANY ($5))
                 ORDER BY %4$s
                 LIMIT %3$s) AS nearest
         ORDER BY nearest.score DESC, nearest.item_id
        $query$,
        dimensions,
        version,
        k,
        CASE WHEN exact
             -- Without the cast the expression matches no index: an exact scan.
             THEN 'e.embedding <=> $1'
             ELSE format('e.embedding::vector(%s) <=> $1::vector(%s)',
                         dimensions, dimensions)
        END)
$$;


CREATE OR REPLACE FUNCTION reco.nearest_items(
    query vector,
    k integer DEFAULT 10,
    exclude_user text DEFAULT NULL,
    exclude_items text[] DEFAULT '{}',
    category text DEFAULT NULL,
    candidates text[] DEFAULT NULL
)
RETURNS TABLE (item_id text, score double precision)
LANGUAGE plpgsql STABLE
-- Iterative scans keep reading the HNSW graph until k rows pass the filters
-- (pgvector >= 0.8); relaxed order is re-sorted by the outer ORDER BY.
SET hnsw.iterative_scan = 'relaxed_order'
SET hnsw.ef_search = '100'
AS $$
DECLARE
    model record := reco.active_model();
    ids text[];
    scores double precision[];
BEGIN
    PERFORM reco.check_k(k);
    -- NULLs in id arrays would make every `<> ALL` comparison NULL.
    exclude_items := array_remove(coalesce(exclude_items, '{}'), NULL);
    candidates := array_remove(candidates, NULL);
    IF query IS NULL THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT array_agg(n.item_id), array_agg(n.score) FROM ('
            || reco.nearest_items_sql(model.version, model.dimensions, k)
            || ') AS n'
       INTO ids, scores
      USING query, exclude_items, exclude_user, category,
            candidates;
    -- The index scan gives up after hnsw.max_scan_tuples; when filters or a
    -- long history leave fewer than k rows, finish with an exact scan.
    IF coalesce(cardinality(ids), 0) < k THEN
        EXECUTE 'SELECT array_agg(n.item_id), array_agg(n.score) FROM ('
                || reco.nearest_items_sql(model.version, model.dimensions, k, true)
                || ') AS n'
           INTO ids, scores
          USING query, exclude_items, exclude_user, category,
                candidates;
    END IF;
    RETURN QUERY
        SELECT r.item_id, r.score
          FROM unnest(ids, scores) WITH ORDINALITY AS r (item_id, score, rank)
         ORDER BY r.rank;
END
$$;


-- A user's or session's vector, as reco/user_vectors.py computes it in training:
-- the weighted sum of the items' query vectors, where the newest item weighs
-- most and weights halve every `user_half_life` items back. `weights` carries
-- the per-event kind and value weights (all 1 for an anonymous session).
CREATE OR REPLACE FUNCTION reco.history_vector(
    item_ids text[], weights real[] DEFAULT NULL
)
RETURNS vector
LANGUAGE plpgsql STABLE AS $$
DECLARE
    model record := reco.active_model();
    half_life double precision :=
        nullif(model.parameters ->> 'user_half_life', '')::double precision;
    result vector;
BEGIN
    SELECT sum(reco.query_vector(e.source, e.query_embedding, e.embedding)
               * array_fill(
                     (coalesce(h.weight, 1)
                      * CASE WHEN half_life > 0
                             THEN power(0.5, (cardinality(item_ids) - h.position)
                                             / half_life)
                             ELSE 1 END)::real,
                     ARRAY[model.dimensions])::vector)
      INTO result
      FROM unnest(item_ids, weights) WITH ORDINALITY AS h (item_id, weight, position)
      JOIN reco.item_embeddings AS e
        ON e.item_id = h.item_id AND e.model_version = model.version;
    RETURN result;
END
$$;


CREATE OR REPLACE FUNCTION reco.user_history_vector(user_id text)
RETURNS vector
LANGUAGE plpgsql STABLE AS $$
DECLARE
    model record := reco.active_model();
    history_length integer := coalesce(
        nullif(model.parameters ->> 'user_max_history', '')::integer, 200);
    value_power double precision := coalesce(
        nullif(model.parameters ->> 'user_value_power', '')::double precision, 0);
    ids text[];
    weights real[];
BEGIN
    SELECT array_agg(recent.item_id ORDER BY recent.occurred_at, recent.item_id),
           array_agg(recent.weight ORDER BY recent.occurred_at, recent.item_id)
      INTO ids, weights
      FROM (SELECT ev.item_id, ev.occurred_at,
                   coalesce((model.parameters -> 'event_weights' ->> ev.kind)::real, 1)
                   * CASE WHEN value_power <> 0 AND ev.value > 0
                          THEN power(ev.value, value_power) ELSE 1 END AS weight
              FROM reco.events AS ev
             WHERE ev.user_id = user_history_vector.user_id
             ORDER BY ev.occurred_at DESC, ev.item_id DESC
             LIMIT history_length) AS recent;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN reco.history_vector(ids, weights);
END
$$;


-- The fallback when there is no history to go on: items by distinct users.
CREATE OR REPLACE FUNCTION reco.popular_items(
    k integer DEFAULT 10,
    category text DEFAULT NULL,
    exclude_items text[] DEFAULT '{}',
    candidates text[] DEFAULT NULL,
    exclude_user text DEFAULT NULL
)
RETURNS TABLE (item_id text, score double precision)
LANGUAGE sql STABLE AS $$
    SELECT i.item_id,
           count(DISTINCT ev.user_id)::double precision
           / greatest((SELECT count(DISTINCT user_id) FROM reco.events), 1) AS score
      FROM reco.items AS i
      LEFT JOIN reco.events AS ev ON ev.item_id = i.item_id
     WHERE i.available
       AND i.item_id <> ALL (array_remove(
               coalesce(popular_items.exclude_items, '{}'), NULL))
       AND (popular_items.candidates IS NULL
            OR i.item_id = ANY (popular_items.candidates))
       AND (popular_items.category IS NULL
            OR reco.in_category(i.category, popular_items.category))
       AND (popular_items.exclude_user IS NULL OR NOT EXISTS (
            SELECT 1 FROM reco.events AS seen
             WHERE seen.user_id = popular_items.exclude_user
               AND seen.item_id = i.item_id))
     GROUP BY i.item_id
     ORDER BY score DESC, i.item_id
     LIMIT reco.check_k(popular_items.k)
$$;


CREATE OR REPLACE FUNCTION reco.recommend(
    user_id text,
    k integer DEFAULT 10,
    exclude_seen boolean DEFAULT true,
    category text DEFAULT NULL,
    candidates text[] DEFAULT NULL
)
RETURNS TABLE (item_id text, score double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    model record := reco.active_model();
    query vector;
BEGIN
    IF EXISTS (SELECT 1 FROM reco.events AS ev
                WHERE ev.user_id = recommend.user_id
                  AND ev.occurred_at > model.created_at) THEN
        -- Events since training: the live history, weighted as in training,
        -- so what the user just did counts now, not after the next retrain.
        query := reco.user_history_vector(recommend.user_id);
    ELSE
        SELECT u.embedding INTO query
          FROM reco.user_embeddings AS u
         WHERE u.model_version = model.version
           AND u.user_id = recommend.user_id;
        IF query IS NULL THEN
            -- Users who arrived after training with back-dated events.
            query := reco.user_history_vector(recommend.user_id);
        END IF;
    END IF;
    IF query IS NULL THEN
        -- No history at all: what is popular, never nothing.
        RETURN QUERY
            SELECT p.item_id, p.score
              FROM reco.popular_items(
                       k, category, '{}', candidates,
                       CASE WHEN exclude_seen THEN recommend.user_id END) AS p;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT n.item_id, n.score
          FROM reco.nearest_items(
                   query, k,
                   CASE WHEN exclude_seen THEN recommend.user_id END,
                   '{}', category, candidates) AS n;
END
$$;


CREATE OR REPLACE FUNCTION reco.recommend(
    user_id bigint,
    k integer DEFAULT 10,
    exclude_seen boolean DEFAULT true,
    category text DEFAULT NULL,
    candidates text[] DEFAULT NULL
)
RETURNS TABLE (item_id text, score double precision)
LANGUAGE sql STABLE AS $$
    SELECT * FROM reco.recommend(user_id::text, k, exclude_seen, category, candidates)
$$;


CREATE OR REPLACE FUNCTION reco.similar_items(
    item text, k integer DEFAULT 10, category text DEFAULT NULL
)
RETURNS TABLE (item_id text, score double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    model record := reco.active_model();
    query vector;
BEGIN
    SELECT reco.query_vector(e.source, e.query_embedding, e.embedding) INTO query
      FROM reco.item_embeddings AS e
     WHERE e.model_version = model.version
       AND e.item_id = similar_items.item;
    IF query IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM reco.items AS i
                        WHERE i.item_id = similar_items.item) THEN
            RAISE EXCEPTION 'item % does not exist', similar_items.item
                USING ERRCODE = 'no_data_found',
                      HINT = 'add it to reco.items first';
        END IF;
        RAISE EXCEPTION 'item % has no embedding in model %',
                        similar_items.item, model.version
            USING ERRCODE = 'no_data_found',
                  HINT = 'run `reco-db embed-new-items`';
    END IF;
    RETURN QUERY
        SELECT n.item_id, n.score
          FROM reco.nearest_items(
                   query, k, NULL, ARRAY[similar_items.item], category) AS n;
END
$$;


CREATE OR REPLACE FUNCTION reco.similar_items(
    item bigint, k integer DEFAULT 10, category text DEFAULT NULL
)
RETURNS TABLE (item_id text, score double precision)
LANGUAGE sql STABLE AS $$
    SELECT * FROM reco.similar_items(item::text, k, category)
$$;


CREATE OR REPLACE FUNCTION reco.recommend_for_session(
    item_ids text[], k integer DEFAULT 10, category text DEFAULT NULL
)
RETURNS TABLE (item_id text, score double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    query vector;
BEGIN
    item_ids := array_remove(item_ids, NULL);
    query := reco.history_vector(item_ids);
    IF query IS NULL THEN
        -- An empty session, or one of items without embeddings yet.
        RETURN QUERY SELECT * FROM reco.popular_items(k, category, item_ids);
        RETURN;
    END IF;
    RETURN QUERY
        SELECT * FROM reco.nearest_items(query, k, NULL, item_ids, category);
END
$$;


CREATE OR REPLACE FUNCTION reco.recommend_for_session(
    item_ids bigint[], k integer DEFAULT 10, category text DEFAULT NULL
)
RETURNS TABLE (item_id text, score double precision)
LANGUAGE sql STABLE AS $$
    SELECT * FROM reco.recommend_for_session(item_ids::text[], k, category)
$$;
