-- Views for BI tools. They call the serving functions, so they always show the
-- active model and the same results an app gets.

CREATE OR REPLACE VIEW reco.user_recommendations AS
SELECT u.user_id,
       r.rank::integer AS rank,
       r.item_id,
       i.title,
       i.category,
       r.score
  FROM reco.user_embeddings AS u
 CROSS JOIN LATERAL reco.recommend(u.user_id, 10)
       WITH ORDINALITY AS r (item_id, score, rank)
  JOIN reco.items AS i ON i.item_id = r.item_id
 WHERE u.model_version = (SELECT version FROM reco.models WHERE is_active);


CREATE OR REPLACE VIEW reco.item_neighbours AS
SELECT e.item_id,
       source_item.title,
       n.rank::integer AS rank,
       n.item_id AS neighbour_id,
       neighbour.title AS neighbour_title,
       n.score
  FROM reco.item_embeddings AS e
  JOIN reco.items AS source_item ON source_item.item_id = e.item_id
 CROSS JOIN LATERAL reco.similar_items(e.item_id, 10)
       WITH ORDINALITY AS n (item_id, score, rank)
  JOIN reco.items AS neighbour ON neighbour.item_id = n.item_id
 WHERE e.model_version = (SELECT version FROM reco.models WHERE is_active);


CREATE OR REPLACE VIEW reco.model_runs AS
SELECT m.version,
       m.created_at,
       m.status,
       m.is_active,
       m.activated_at,
       m.dimensions,
       (m.metrics ->> 'warm_recall@20')::double precision AS warm_recall_20,
       (m.metrics ->> 'warm_ndcg@20')::double precision AS warm_ndcg_20,
       (m.metrics ->> 'cold_recall@20')::double precision AS cold_recall_20,
       (m.metrics ->> 'cold_ndcg@20')::double precision AS cold_ndcg_20,
       (m.metrics ->> 'train_seconds')::double precision AS train_seconds,
       m.onnx_sha256,
       m.metrics,
       m.parameters
  FROM reco.models AS m
 ORDER BY m.version DESC;


CREATE OR REPLACE VIEW reco.coverage AS
SELECT m.version AS model_version,
       (SELECT count(*) FROM reco.items) AS items,
       count(e.item_id) AS embedded_items,
       count(e.item_id) FILTER (WHERE e.source = 'behaviour') AS behaviour_items,
       count(e.item_id) FILTER (WHERE e.source = 'content') AS content_items,
       (SELECT count(*) FROM reco.items) - count(e.item_id) AS items_waiting,
       (SELECT count(*) FROM reco.user_embeddings AS u
         WHERE u.model_version = m.version) AS users_with_vectors
  FROM reco.models AS m
  LEFT JOIN reco.item_embeddings AS e ON e.model_version = m.version
 WHERE m.is_active
 GROUP BY m.version;
