{-# LANGUAGE OverloadedStrings #-}
-- | The hello application: answers with its version, has a health endpoint
-- for readiness probes, and a slow endpoint for drain tests.
module Hello (Settings (..), app, greeting) where

import Control.Concurrent (threadDelay)
import qualified Data.ByteString.Char8 as B
import qualified Data.ByteString.Lazy.Char8 as L
import Network.HTTP.Types (hContentType, methodGet, methodPost, status200, status404, status405, status503)
import Network.Wai (Application, pathInfo, queryString, requestMethod, responseLBS)
import Text.Read (readMaybe)

-- | What the app knows about itself.
data Settings = Settings
  { version :: String   -- ^ DFLOW_VERSION
  , failHealth :: Bool  -- ^ HELLO_FAIL_HEALTH=1: never become ready
  }

-- | The body of @GET /@.
greeting :: Settings -> L.ByteString
greeting s = L.pack ("hello from " ++ version s ++ "\n")

-- | The WAI application.
app :: Settings -> Application
app s req respond =
  case (requestMethod req, pathInfo req) of
    (m, []) | m == methodGet || m == methodPost -> respond (text status200 (greeting s))
    (m, ["health"]) | m == methodGet ->
      respond $ if failHealth s then text status503 "unhealthy\n" else text status200 "ok\n"
    (m, ["slow"]) | m == methodGet || m == methodPost -> do
      let ms = maybe 0 (min 30000 . max 0) (lookup "ms" (queryString req) >>= fmap B.unpack >>= readMaybe)
      threadDelay (ms * 1000)
      respond (text status200 (greeting s))
    (_, []) -> respond (text status405 "method not allowed\n")
    _ -> respond (text status404 "not found\n")
  where
    text st = responseLBS st [(hContentType, "text/plain; charset=utf-8")]
